// Errors of the SentencePiece addon: a message for people and a stable `code` for programs, as JS sees
// them (an Error with a `code` property, the same shape lep.node rejects with).
#pragma once
#include <napi.h>

#include <string>

#include "common/JsError.h"
#include "core/error.h"

namespace lep_spm {

// The core's error type: it is plain C++ (no libtorch), so this addon can share it.
using SpmError = lep::Error;

using lep_node::MakeError;

}  // namespace lep_spm
