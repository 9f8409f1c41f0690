#include "config.h"
typedef int mr_stub_conf_print_t;
