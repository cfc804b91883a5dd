#include "cli/commands.h"

int main(int argc, char** argv) { return qs::cli::run_main(argc, argv); }
