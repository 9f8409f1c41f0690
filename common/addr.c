#include "config.h"
typedef int mr_stub_addr_t;
