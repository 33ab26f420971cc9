#include "unit.h"
int main(void) { return unit_done("b64 (not yet written)"); }
