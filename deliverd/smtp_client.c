#include "config.h"
typedef int mr_stub_smtp_client_t;
