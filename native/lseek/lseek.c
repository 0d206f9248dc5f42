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
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>

static const char *errno_name(int err) {
  switch (err) {
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENXIO: return "ENXIO";
    case EOVERFLOW: return "EOVERFLOW";
    case ESPIPE: return "ESPIPE";
    default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, int err, const char *call) {
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
  napi_throw(env, error);
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

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "lseek", NAPI_AUTO_LENGTH, js_lseek, NULL, &fn);
  napi_set_named_property(env, exports, "lseek", fn);
  napi_create_function(env, "fadvise", NAPI_AUTO_LENGTH, js_fadvise, NULL, &fn);
  napi_set_named_property(env, exports, "fadvise", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
