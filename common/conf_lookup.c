#include "config.h"
typedef int mr_stub_conf_lookup_t;
