// getOriginalDst(fd): the destination a TCP connection had before the nat table's REDIRECT
// target rewrote it to the proxy's capture port (15001 outbound / 15006 inbound).
//
// Linux keeps the pre-NAT tuple in the conntrack entry and exposes it per socket through
// getsockopt(SOL_IP, SO_ORIGINAL_DST) for IPv4 and getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST)
// for IPv6 (both option numbers are 80). Node has no API for either, hence this addon.
#include <napi.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

// Defined in <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>; those kernel
// headers clash with glibc's in C++, so the two stable ABI numbers are spelled out here.
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

namespace {

// Throws a JS Error whose message and `code` name the errno (e.g. ENOENT when the socket
// has no conntrack entry, i.e. it was not redirected), so callers can branch on it.
Napi::Value ThrowErrno(Napi::Env env, const char* call, int err) {
  const char* name = strerrorname_np(err);
  std::string code = name != nullptr ? name : "E" + std::to_string(err);
  std::string msg = std::string(call) + " failed: " + code + " (" + std::strerror(err) + ")";
  Napi::Error error = Napi::Error::New(env, msg);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, call));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Object Result(Napi::Env env, const std::string& address, int port, int family) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("address", Napi::String::New(env, address));
  out.Set("port", Napi::Number::New(env, port));
  out.Set("family", Napi::Number::New(env, family));
  return out;
}

Napi::Value IPv4OriginalDst(Napi::Env env, int fd) {
  sockaddr_in dst{};
  socklen_t len = sizeof(dst);
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) {
    return ThrowErrno(env, "getsockopt(SOL_IP, SO_ORIGINAL_DST)", errno);
  }
  char text[INET_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET, &dst.sin_addr, text, sizeof(text));
  return Result(env, text, ntohs(dst.sin_port), 4);
}

Napi::Value IPv6OriginalDst(Napi::Env env, int fd) {
  sockaddr_in6 dst{};
  socklen_t len = sizeof(dst);
  if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) != 0) {
    return ThrowErrno(env, "getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST)", errno);
  }
  char text[INET6_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof(text));
  return Result(env, text, ntohs(dst.sin6_port), 6);
}

Napi::Value GetOriginalDst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "getOriginalDst(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd < 0) {
    Napi::TypeError::New(env, "getOriginalDst(fd): fd must be >= 0").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // The socket's own family decides which conntrack table to ask. A dual-stack listener
  // (Node's default `::`) accepts IPv4 peers on AF_INET6 sockets with v4-mapped addresses;
  // those flows are tracked by IPv4 conntrack, so they must be asked with SOL_IP.
  sockaddr_storage local{};
  socklen_t local_len = sizeof(local);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    return ThrowErrno(env, "getsockname", errno);
  }
  if (local.ss_family == AF_INET) return IPv4OriginalDst(env, fd);
  if (local.ss_family == AF_INET6) {
    const auto* local6 = reinterpret_cast<const sockaddr_in6*>(&local);
    if (IN6_IS_ADDR_V4MAPPED(&local6->sin6_addr)) return IPv4OriginalDst(env, fd);
    return IPv6OriginalDst(env, fd);
  }
  return ThrowErrno(env, "getOriginalDst (socket is not AF_INET/AF_INET6)", EAFNOSUPPORT);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getOriginalDst", Napi::Function::New(env, GetOriginalDst, "getOriginalDst"));
  return exports;
}

}  // namespace

NODE_API_MODULE(original_dst, Init)
