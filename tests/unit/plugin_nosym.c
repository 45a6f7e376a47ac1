/* A shared object without the plugin descriptor: the host must refuse it (-EPROTO). */
__attribute__((visibility("default"))) int not_a_plugin(void);
int not_a_plugin(void) { return 42; }
