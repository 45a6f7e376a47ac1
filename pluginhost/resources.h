/* The resource and ability calls of the host API (op_db_exec ...): each
 * builds its Resource or Ability REQUEST for `instance`, sends it through
 * the bridge (platcall.h) and turns the REPLY into the SDK's types (one
 * allocation per result). Worker threads. Each returns 0 or a negative
 * errno and fills `err` (one line; "" on success). */
#ifndef PLUGINHOST_RESOURCES_H
#define PLUGINHOST_RESOURCES_H

#include <stddef.h>

#include "openplatform/plugin.h"
#include "platcall.h"

typedef struct {
    ph_platcall_t *pc;    /* NULL: no platform (-ENOSYS) */
    const char *instance; /* the calling context's instance UUID */
    char *err;            /* the context's last-error buffer */
    size_t err_size;
} ph_res_call_t;

int ph_res_db_exec(const ph_res_call_t *c, const char *sql, const op_db_value_t *params,
                   size_t n_params, op_db_result_t **out);
int ph_res_http_request(const ph_res_call_t *c, const char *method, const char *url,
                        const op_header_t *headers, size_t n_headers, const void *body,
                        size_t body_len, op_http_response_t **out);
int ph_res_file_read(const ph_res_call_t *c, const char *path, void **data, size_t *len);
int ph_res_file_write(const ph_res_call_t *c, const char *path, const void *data, size_t len);
int ph_res_file_list(const ph_res_call_t *c, const char *dir, op_file_list_t **out);
int ph_res_file_delete(const ph_res_call_t *c, const char *path);
int ph_res_task_register(const ph_res_call_t *c, const char *cron, const char *name);
int ph_res_task_unregister(const ph_res_call_t *c, const char *name);
int ph_res_service_register(const ph_res_call_t *c, unsigned port, const char *health_path);
int ph_res_service_unregister(const ph_res_call_t *c);

/* Ability.result REPLY body (host -> platform) for a trigger: error set
 * when code != 0. NULL on allocation failure. */
Plat__PlatformMessage *ph_msg_ability_result(int code, const char *message, const char *detail);

#endif
