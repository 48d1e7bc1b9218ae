// The one place a C++ exception becomes a JS error, for jobs (common/NodeJob.h) and synchronous calls
// (Sync below) of both addons: an Error with the stable `code` that ts/errors.ts turns into a LepError.
// Free of libtorch like NodeJob.h: what differs between the addons (c10::Error in lep.node) comes in
// through Traits::Describe, and the mapping itself is the core's (core/failure.h).
#pragma once
#include <napi.h>

#include <exception>
#include <string>

#include "core/failure.h"

namespace lep_node {

// A failure as JS sees it: a stable `code` and a message for people (core/failure.h).
using JobFailure = lep::Failure;

inline Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// Runs the body of a synchronous native call. A Napi::Error (argument checks) passes through; any other
// exception becomes the same JS error a job would reject with, instead of escaping node-addon-api's
// wrapper (which catches only Napi::Error) and terminating the process.
template <class Traits, class F>
auto Guard(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    const JobFailure f = Traits::Describe(std::current_exception());
    throw MakeError(env, f.code, f.message);
  }
}

// A module function as a guarded one: exports.Set("x", Napi::Function::New(env, Sync<Traits, X>)).
template <class Traits, Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Sync(const Napi::CallbackInfo& info) {
  return Guard<Traits>(info.Env(), [&] { return F(info); });
}

}  // namespace lep_node
