#include "config.h"
typedef int mr_stub_util_t;
