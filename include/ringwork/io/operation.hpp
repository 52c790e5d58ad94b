// SPDX-License-Identifier: MIT
// Operation: the object a submission's user_data points at; completions are dispatched to it.
#pragma once

#include <cstdint>

namespace ringwork::io {

/// \brief Target of a kernel completion.
///
/// Every submission's `user_data` is the address of an Operation that lives inside the
/// awaiting coroutine's frame or inside a long-lived owner (a listener, a socket). The
/// reactor calls `complete_` for each completion; no virtual dispatch. The object must stay
/// alive until its final completion (for multishot operations: the one without F_MORE).
struct Operation {
    using Complete = void (*)(Operation* self, int result, std::uint32_t flags) noexcept;
    explicit Operation(Complete complete) noexcept : complete_(complete) {}
    Complete complete_;
};

/// \brief Work posted to a reactor from another thread (intrusive, owned by the poster).
struct RemoteWork {
    using Run = void (*)(RemoteWork* self) noexcept;
    explicit RemoteWork(Run run) noexcept : run_(run) {}
    Run run_;
    RemoteWork* next_ = nullptr;
};

/// \brief Work run once just before the reactor's next submit (e.g. flushing a connection's
/// pending output so every response produced in this pass leaves in one send).
struct Deferred {
    using Run = void (*)(Deferred* self) noexcept;
    explicit Deferred(Run run) noexcept : run_(run) {}
    Run run_;
    Deferred* next_ = nullptr;
    bool queued_ = false;
};

} // namespace ringwork::io
