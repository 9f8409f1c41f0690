#include "config.h"
typedef int mr_stub_smtp_session_t;
