#include "config.h"
typedef int mr_stub_supervise_t;
