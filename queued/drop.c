#include "config.h"
typedef int mr_stub_drop_t;
