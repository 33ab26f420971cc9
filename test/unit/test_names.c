#include "unit.h"
int main(void) { return unit_done("names (not yet written)"); }
