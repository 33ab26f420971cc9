#include "unit.h"
int main(void) { return unit_done("backend_local (not yet written)"); }
