{
  "targets": [
    {
      "target_name": "lseek",
      "sources": ["lseek.c"],
      "defines": ["NAPI_VERSION=8", "_FILE_OFFSET_BITS=64", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
