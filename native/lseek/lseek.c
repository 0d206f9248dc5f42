/*
 * lseek(fd, offset, whence) for Node, which has no binding for it: the dir backend asks the
 * filesystem for holes (SEEK_DATA / SEEK_HOLE) instead of reading them.
 *
 * Returns the new offset as a Number (file offsets stay below 2^53), -1 for ENXIO (no data, or an
 * offset past the end: a normal answer, not an error), and throws an Error with `code` (errno name)
 * and `errno` for anything else.
 *
 * fadvise(fd, offset, length, advice): posix_fadvise(2), which Node has no binding for either. The dir
 * backend asks for POSIX_FADV_WILLNEED just ahead of a copy's reads, so the kernel reads a cold source
 * while the copy writes (several reads in flight, as qemu-img keeps). Returns undefined; throws like
 * lseek on failure.
 *
 * syncFileRange(fd, offset, length, flags): sync_file_range(2), on a libuv worker thread (it can block
 * when the device queue is full), returning a Promise. The dir backend starts the writeback of what a
 * copy has written with SYNC_FILE_RANGE_WRITE as it goes: unlike a background fdatasync it commits no
 * journal and flushes no disk cache, so the copy's own writes do not stall behind it, and the final
 * fdatasync has only the tail left.
 *
 * copyFileRange(fdIn, offsetIn, fdOut, offsetOut, length): copy_file_range(2), on a worker thread too,
 * returning a Promise of the bytes copied (0 at the end of the source). The copy stays in the kernel.
 * Both reject with an Error carrying `code` (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP... say "not here").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>

static const char *errno_name(int err) {
  switch (err) {
    case EBADF: return "EBADF";
    case EXDEV: return "EXDEV";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOSPC: return "ENOSPC";
    case EFBIG: return "EFBIG";
    case EISDIR: return "EISDIR";
    case EPERM: return "EPERM";
    case ETXTBSY: return "ETXTBSY";
    case EINVAL: return "EINVAL";
    case ENXIO: return "ENXIO";
    case EOVERFLOW: return "EOVERFLOW";
    case ESPIPE: return "ESPIPE";
    default: return "EIO";
  }
}

static napi_value errno_error(napi_env env, int err, const char *call) {
  napi_value code, message, error, number, syscall;
  char text[128];
  snprintf(text, sizeof text, "%s: %s failed: %s", errno_name(err), call, strerror(err));
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, -err, &number);
  napi_set_named_property(env, error, "errno", number);
  napi_create_string_utf8(env, call, NAPI_AUTO_LENGTH, &syscall);
  napi_set_named_property(env, error, "syscall", syscall);
  return error;
}

static napi_value throw_errno(napi_env env, int err, const char *call) {
  napi_throw(env, errno_error(env, err, call));
  return NULL;
}

static napi_value js_lseek(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd, whence;
  int64_t offset;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int32(env, argv[2], &whence) != napi_ok) {
    napi_throw_type_error(env, NULL, "lseek(fd, offset, whence) expects three numbers");
    return NULL;
  }
  off_t at = lseek(fd, (off_t)offset, whence);
  if (at < 0) {
    int err = errno;
    if (err != ENXIO) return throw_errno(env, err, "lseek");
  }
  napi_create_int64(env, at < 0 ? -1 : (int64_t)at, &result);
  return result;
}

static napi_value js_fadvise(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd, advice;
  int64_t offset, length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok ||
      napi_get_value_int32(env, argv[3], &advice) != napi_ok) {
    napi_throw_type_error(env, NULL, "fadvise(fd, offset, length, advice) expects four numbers");
    return NULL;
  }
  /* posix_fadvise returns the error number instead of setting errno. */
  int err = posix_fadvise(fd, (off_t)offset, (off_t)length, advice);
  if (err != 0) return throw_errno(env, err, "posix_fadvise");
  return NULL;
}

/* One call on a worker thread: its arguments, its result and the promise it settles. */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int kind; /* 0: sync_file_range, 1: copy_file_range */
  int32_t fd_in, fd_out;
  int64_t off_in, off_out, length;
  uint32_t flags;
  int64_t result;
  int err;
} io_call;

static void io_execute(napi_env env, void *data) {
  (void)env;
  io_call *call = data;
  if (call->kind == 0) {
    call->result = sync_file_range(call->fd_in, (off_t)call->off_in, (off_t)call->length, call->flags);
  } else {
    loff_t in = (loff_t)call->off_in, out = (loff_t)call->off_out;
    call->result = copy_file_range(call->fd_in, &in, call->fd_out, &out, (size_t)call->length, 0);
  }
  call->err = call->result < 0 ? errno : 0;
}

static void io_complete(napi_env env, napi_status status, void *data) {
  io_call *call = data;
  napi_value value;
  if (status != napi_ok) {
    napi_create_string_utf8(env, "the call was cancelled", NAPI_AUTO_LENGTH, &value);
    napi_value error;
    napi_create_error(env, NULL, value, &error);
    napi_reject_deferred(env, call->deferred, error);
  } else if (call->result < 0) {
    napi_reject_deferred(env, call->deferred, errno_error(env, call->err, call->kind == 0 ? "sync_file_range" : "copy_file_range"));
  } else if (call->kind == 0) {
    napi_get_undefined(env, &value);
    napi_resolve_deferred(env, call->deferred, value);
  } else {
    napi_create_int64(env, call->result, &value);
    napi_resolve_deferred(env, call->deferred, value);
  }
  napi_delete_async_work(env, call->work);
  free(call);
}

static napi_value queue_call(napi_env env, io_call *call, const char *name) {
  napi_value promise, resource;
  if (napi_create_promise(env, &call->deferred, &promise) != napi_ok) {
    free(call);
    return NULL;
  }
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  if (napi_create_async_work(env, NULL, resource, io_execute, io_complete, call, &call->work) != napi_ok ||
      napi_queue_async_work(env, call->work) != napi_ok) {
    napi_reject_deferred(env, call->deferred, errno_error(env, EIO, name));
    return promise;
  }
  return promise;
}

static napi_value js_sync_file_range(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  io_call *call = calloc(1, sizeof *call);
  if (!call) return throw_errno(env, ENOMEM, "sync_file_range");
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4 ||
      napi_get_value_int32(env, argv[0], &call->fd_in) != napi_ok ||
      napi_get_value_int64(env, argv[1], &call->off_in) != napi_ok ||
      napi_get_value_int64(env, argv[2], &call->length) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &call->flags) != napi_ok) {
    free(call);
    napi_throw_type_error(env, NULL, "syncFileRange(fd, offset, length, flags) expects four numbers");
    return NULL;
  }
  call->kind = 0;
  return queue_call(env, call, "sync_file_range");
}

static napi_value js_copy_file_range(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  io_call *call = calloc(1, sizeof *call);
  if (!call) return throw_errno(env, ENOMEM, "copy_file_range");
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 ||
      napi_get_value_int32(env, argv[0], &call->fd_in) != napi_ok ||
      napi_get_value_int64(env, argv[1], &call->off_in) != napi_ok ||
      napi_get_value_int32(env, argv[2], &call->fd_out) != napi_ok ||
      napi_get_value_int64(env, argv[3], &call->off_out) != napi_ok ||
      napi_get_value_int64(env, argv[4], &call->length) != napi_ok || call->length < 0) {
    free(call);
    napi_throw_type_error(env, NULL, "copyFileRange(fdIn, offsetIn, fdOut, offsetOut, length) expects five numbers");
    return NULL;
  }
  call->kind = 1;
  return queue_call(env, call, "copy_file_range");
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "lseek", NAPI_AUTO_LENGTH, js_lseek, NULL, &fn);
  napi_set_named_property(env, exports, "lseek", fn);
  napi_create_function(env, "fadvise", NAPI_AUTO_LENGTH, js_fadvise, NULL, &fn);
  napi_set_named_property(env, exports, "fadvise", fn);
  napi_create_function(env, "syncFileRange", NAPI_AUTO_LENGTH, js_sync_file_range, NULL, &fn);
  napi_set_named_property(env, exports, "syncFileRange", fn);
  napi_create_function(env, "copyFileRange", NAPI_AUTO_LENGTH, js_copy_file_range, NULL, &fn);
  napi_set_named_property(env, exports, "copyFileRange", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
