#include "config.h"
typedef int mr_stub_queue_commit_t;
