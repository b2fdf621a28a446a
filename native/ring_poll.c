/*
 * gscip_ring_poll: watch a file descriptor (a libbpf ring buffer's epoll fd)
 * on Node's own event loop (uv_poll) and call back on the main thread when it
 * is readable. One wake-up per burst of punts: no thread-pool wait, no hop
 * from a pool thread back to the loop (controlplane/bpf/ring-reader.ts).
 *
 *   const h = addon.watch(fd, (status) => { ... });  // status 0, or a negative libuv error
 *   addon.unwatch(h);                                 // idempotent; the fd stays open
 *
 * Level-triggered: the callback must consume what is there (ring_buffer__consume)
 * or it is called again on the next turn of the loop. Built by the Makefile
 * (target `native`) against the Node headers; optional: without it the reader
 * falls back to its thread-pool wait.
 */
#include <node_api.h>
#include <uv.h>
#include <stdlib.h>

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref cb;
  napi_async_context actx;
  int stopped;   /* unwatch ran: no more callbacks */
  int closed;    /* libuv is done with the handle */
  int finalized; /* the JS handle was collected: nobody can call unwatch any more */
} watch_t;

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, #call " failed"); return NULL; } } while (0)

/* The memory goes when both libuv and JS are done with it (a second unwatch must not touch freed memory). */
static void on_closed(uv_handle_t *h) {
  watch_t *w = h->data;
  w->closed = 1;
  if (w->finalized) free(w);
}

static void stop(watch_t *w) {
  if (w->stopped) return;
  w->stopped = 1;
  uv_poll_stop(&w->poll);
  napi_delete_reference(w->env, w->cb);
  napi_async_destroy(w->env, w->actx);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)events;
  watch_t *w = p->data;
  if (w->stopped) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, arg, result;
  if (napi_get_reference_value(env, w->cb, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok && napi_create_int32(env, status, &arg) == napi_ok) {
    /* make_callback, not call_function: microtasks and nextTicks run after it, as after any libuv callback. */
    napi_status s = napi_make_callback(env, w->actx, recv, cb, 1, &arg, &result);
    if (s == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* A watch that was never unwatched keeps polling (and its memory) as long as the loop runs. */
static void finalize_watch(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  watch_t *w = data;
  w->finalized = 1;
  if (w->closed) free(w);
}

static napi_value watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, NULL, "watch(fd, callback)"); return NULL; }
  int32_t fd;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) { napi_throw_type_error(env, NULL, "fd must be a non-negative integer"); return NULL; }
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[1], &t));
  if (t != napi_function) { napi_throw_type_error(env, NULL, "callback must be a function"); return NULL; }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  watch_t *w = calloc(1, sizeof *w);
  if (!w) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  w->env = env;
  int rc = uv_poll_init(loop, &w->poll, fd);
  w->finalized = 1; /* until the JS handle exists, on_closed frees */
  if (rc != 0) {
    free(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  w->poll.data = w;
  napi_value name, ext;
  if (napi_create_string_utf8(env, "gscip_ring_poll", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->actx) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &w->cb) != napi_ok) {
    uv_close((uv_handle_t *)&w->poll, on_closed);
    napi_throw_error(env, NULL, "watch: could not set up the callback");
    return NULL;
  }
  rc = uv_poll_start(&w->poll, UV_READABLE, on_poll);
  if (rc != 0) {
    stop(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  if (napi_create_external(env, w, finalize_watch, NULL, &ext) != napi_ok) {
    stop(w);
    napi_throw_error(env, NULL, "watch: could not create the handle");
    return NULL;
  }
  w->finalized = 0;
  return ext;
}

static napi_value unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "unwatch(handle from watch)");
    return NULL;
  }
  stop((watch_t *)data);
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value f;
  if (napi_create_function(env, "watch", NAPI_AUTO_LENGTH, watch, NULL, &f) != napi_ok ||
      napi_set_named_property(env, exports, "watch", f) != napi_ok ||
      napi_create_function(env, "unwatch", NAPI_AUTO_LENGTH, unwatch, NULL, &f) != napi_ok ||
      napi_set_named_property(env, exports, "unwatch", f) != napi_ok) return NULL;
  return exports;
}
