#include "config.h"
typedef int mr_stub_conf_lex_t;
