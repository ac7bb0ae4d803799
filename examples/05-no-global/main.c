/* examples/05-no-global/main.c - the talk's "Destroy: no global!" experiment in C. An sdk
 * module has a Client class whose request(url) appends "Called: <url>" to the client's log,
 * and a module-level `client = Client()`. foo(base_url) sends 100 requests with formatted URLs;
 * it is called for three base URLs inside the measure. `before` foo uses the module-level
 * client, whose log keeps every line; `after` foo makes a Client of its own, which dies (and
 * its log with it) when foo returns.
 * Usage: no_global [before|after]   (none: both, then the table). docs/talk.md explains the
 * figures. */
#include <stdbool.h>
#include <stdio.h>

#include <zerowaste/obj.h>

#include "../common/experiment.h"

#define N_REQUESTS 100

static bool use_global; /* the variant: foo uses sdk's client (before) or makes its own */
static zw_type *client_class;
static zw_obj *sdk_client; /* sdk.client, made when the program imports sdk */

/* Client.__init__(self): self.log = [] */
static zw_obj *
client_init(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    (void)args, (void)nargs;
    zw_obj *log = zw_list_new(zw_rt_of(self), 0);
    if (log == NULL || zw_setattr(self, "log", log) != 0) {
        zw_xdecref(log);
        return NULL;
    }
    zw_decref(log);
    return zw_newref(zw_none(zw_rt_of(self)));
}

/* Client.request(self, url): self.log.append(f"Called: {url}") */
static zw_obj *
client_request(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    (void)nargs;
    zw_obj *log = zw_getattr(self, "log");
    zw_obj *line = log ? zw_str_from_format(zw_rt_of(self), "Called: %U", args[0]) : NULL;
    int rc = line ? zw_list_append(log, line) : -1;
    zw_xdecref(line);
    zw_xdecref(log);
    return rc == 0 ? zw_newref(zw_none(zw_rt_of(self))) : NULL;
}

/* The sdk module: the Client class and the module-level client, made at import time (before
 * the measure, in both variants: the program imports sdk either way). */
static int
import_sdk(zw_rt *rt)
{
    static const zw_method methods[] = {
        {"__init__", client_init, 0, NULL},
        {"request", client_request, 1, NULL},
        {NULL, NULL, 0, NULL},
    };
    zw_class_spec spec = {.name = "Client", .methods = methods};
    client_class = zw_class_new(rt, &spec);
    sdk_client = client_class ? zw_call(client_class, 0, NULL) : NULL;
    return sdk_client ? 0 : -1;
}

/* def foo(base_url): [client = Client()]; for r in range(100): client.request(base_url.format(r))
 * C's printf format stands for str.format: base_url is "/user/%d" for Python's "/user/{}". */
static int
foo(zw_rt *rt, const char *base_url)
{
    zw_obj *client = use_global ? zw_newref(sdk_client) : zw_call(client_class, 0, NULL);
    for (int r = 0; client != NULL && r < N_REQUESTS; r++) {
        zw_obj *url = zw_str_from_format(rt, base_url, r);
        zw_obj *res = url ? zw_call_method(client, "request", 1, &url) : NULL;
        zw_xdecref(url);
        if (res == NULL)
            ZW_CLEAR(client);
        zw_xdecref(res);
    }
    if (client == NULL)
        return -1;
    zw_decref(client);
    return 0;
}

static int
run(zw_rt *rt, experiment_result *res, bool before)
{
    use_global = before;
    /* the constants of the Python code: the names "log" and "request" (interned) */
    zw_obj *name_log = zw_str_intern_utf8(rt, "log");
    zw_obj *name_request = zw_str_intern_utf8(rt, "request");
    if (name_log == NULL || name_request == NULL || import_sdk(rt) != 0 ||
        experiment_begin(rt) != 0)
        return -1;

    /* with measure_memory(): foo("/user/{}"); foo("/orders/{}"); foo("/invoices/{}") */
    int rc = foo(rt, "/user/%d");
    if (rc == 0)
        rc = foo(rt, "/orders/%d");
    if (rc == 0)
        rc = foo(rt, "/invoices/%d");
    if (experiment_end(res) != 0)
        rc = -1;
    zw_decref(sdk_client);
    zw_decref(name_request);
    zw_decref(name_log);
    return rc;
}

static int
run_before(zw_rt *rt, experiment_result *res)
{
    return run(rt, res, true);
}

static int
run_after(zw_rt *rt, experiment_result *res)
{
    return run(rt, res, false);
}

int
main(int argc, char **argv)
{
    static const experiment_variant variants[] = {{"before", run_before}, {"after", run_after}};
    return experiment_main(argc, argv,
                           "no global: a module-level client vs a client per call (3 x 100 "
                           "requests)",
                           variants, 2);
}
