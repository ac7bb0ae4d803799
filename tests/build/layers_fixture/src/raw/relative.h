/* A fixture of build_layers_fixture: an include that climbs out of its folder. Never compiled. */
#include "../mem/mem_internal.h"
