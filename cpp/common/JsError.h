// The one place a C++ exception becomes a JS error, for jobs (common/NodeJob.h) and synchronous calls
// (Sync below) of both addons: an Error with the stable `code` that ts/errors.ts turns into a LepError.
// Free of libtorch like NodeJob.h: what differs between the addons (c10::Error in lep.node) comes in
// through Traits::Describe.
#pragma once
#include <napi.h>

#include <exception>
#include <filesystem>
#include <new>
#include <optional>
#include <string>

#include "core/error.h"

namespace lep_node {

// A failure as JS sees it: a stable `code` and a message for people.
struct JobFailure {
  std::string code, message;
};

inline Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// The addon's own exception types first (Traits::Describe: they may derive from std::exception), then
// lep::Error (its code), std::bad_alloc as LEP_OUT_OF_MEMORY, std::filesystem's errors as LEP_IO, then any
// std::exception or anything else as LEP_NATIVE.
template <class Traits>
JobFailure Describe(std::exception_ptr ep) {
  if (std::optional<JobFailure> own = Traits::Describe(ep)) return *std::move(own);
  try {
    std::rethrow_exception(ep);
  } catch (const lep::Error& e) {
    return {e.code(), e.what()};
  } catch (const std::bad_alloc& e) {
    return {"LEP_OUT_OF_MEMORY", std::string("out of memory (") + e.what() + ")\n" + lep::out_of_memory_hint()};
  } catch (const std::filesystem::filesystem_error& e) {
    // Directories made or listed by the core (a checkpoint's): "cannot create directories: No space left
    // on device [OUT/checkpoints]" as LEP_IO with its hint, not LEP_NATIVE.
    std::string what = e.what();
    if (what.rfind("filesystem error: ", 0) == 0) what.erase(0, 18);
    return {"LEP_IO", what + "\nHINT: " + lep::io_hint(e.code().value())};
  } catch (const std::exception& e) {
    return {"LEP_NATIVE", e.what()};
  } catch (...) {
    return {"LEP_NATIVE", "unknown native error"};
  }
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
    const JobFailure f = Describe<Traits>(std::current_exception());
    throw MakeError(env, f.code, f.message);
  }
}

// A module function as a guarded one: exports.Set("x", Napi::Function::New(env, Sync<Traits, X>)).
template <class Traits, Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Sync(const Napi::CallbackInfo& info) {
  return Guard<Traits>(info.Env(), [&] { return F(info); });
}

}  // namespace lep_node
