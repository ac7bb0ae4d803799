/* A fixture of build_layers_fixture: the CLI reading an internal header of the library, which
 * only the public headers may give it. Never compiled. */
#include "fixture_internal.h"
