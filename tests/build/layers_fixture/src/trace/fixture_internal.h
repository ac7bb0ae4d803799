/* A fixture of build_layers_fixture: an internal header of trace. Never compiled. */
