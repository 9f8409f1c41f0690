#include "config.h"
typedef int mr_stub_listen_t;
