#include "config.h"
typedef int mr_stub_queue_sched_t;
