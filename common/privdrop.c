#include "config.h"
typedef int mr_stub_privdrop_t;
