# Builds original_dst.node: a tiny N-API addon reading the pre-NAT destination of a socket
# captured by the nat table's REDIRECT target (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST).
{
  "targets": [
    {
      "target_name": "original_dst",
      "sources": ["src/original_dst.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"]
    }
  ]
}
