atoms.o: atoms.c atoms.h /usr/lib/erlang/erts-13.1.5/include/erl_nif.h \
 /usr/lib/erlang/erts-13.1.5/include/erl_drv_nif.h \
 /usr/lib/erlang/erts-13.1.5/include/erl_int_sizes_config.h \
 /usr/lib/erlang/erts-13.1.5/include/erl_nif_api_funcs.h
