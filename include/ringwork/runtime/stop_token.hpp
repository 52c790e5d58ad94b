// SPDX-License-Identifier: MIT
// Reactor-local stop source, token and callbacks: intrusive, allocation-free, not thread-safe.
#pragma once

#include <cassert>
#include <utility>

namespace ringwork::runtime {

class StopSource;

/// \brief Base of an intrusive callback registered with a StopSource.
class StopCallbackBase {
public:
    StopCallbackBase(const StopCallbackBase&) = delete;
    StopCallbackBase& operator=(const StopCallbackBase&) = delete;

protected:
    using Invoke = void (*)(StopCallbackBase*) noexcept;
    explicit StopCallbackBase(Invoke fn) noexcept : fn_(fn) {}
    ~StopCallbackBase() = default;
    void attach(StopSource* source) noexcept;
    void detach() noexcept;

private:
    friend class StopSource;
    Invoke fn_;
    StopSource* source_ = nullptr;
    StopCallbackBase* prev_ = nullptr;
    StopCallbackBase* next_ = nullptr;
};

/// \brief Owner of a stop state; request_stop() runs every registered callback once.
///
/// Thread affinity: the reactor thread that owns it (cross-thread requests go through
/// Reactor::post). Unlike std::stop_source it never allocates. Must outlive its tokens and
/// callbacks (the owner of the source guarantees it, e.g. a connection outlives its handler).
class StopSource {
public:
    StopSource() noexcept = default;
    StopSource(const StopSource&) = delete;
    StopSource& operator=(const StopSource&) = delete;
    ~StopSource() { assert(head_ == nullptr && "stop callbacks outlive their source"); }

    [[nodiscard]] bool stop_requested() const noexcept { return requested_; }
    /// \brief Request stop; returns false if it was already requested.
    bool request_stop() noexcept {
        if (requested_) {
            return false;
        }
        requested_ = true;
        while (StopCallbackBase* cb = head_) {
            unlink(cb);
            cb->fn_(cb);
        }
        return true;
    }
    /// \brief Forget a past request so the source can be reused (pooled connections).
    void reset() noexcept {
        assert(head_ == nullptr);
        requested_ = false;
    }

private:
    friend class StopCallbackBase;
    void link(StopCallbackBase* cb) noexcept {
        cb->source_ = this;
        cb->prev_ = nullptr;
        cb->next_ = head_;
        if (head_ != nullptr) {
            head_->prev_ = cb;
        }
        head_ = cb;
    }
    void unlink(StopCallbackBase* cb) noexcept {
        if (cb->prev_ != nullptr) {
            cb->prev_->next_ = cb->next_;
        } else {
            head_ = cb->next_;
        }
        if (cb->next_ != nullptr) {
            cb->next_->prev_ = cb->prev_;
        }
        cb->source_ = nullptr;
        cb->prev_ = cb->next_ = nullptr;
    }
    bool requested_ = false;
    StopCallbackBase* head_ = nullptr;
};

inline void StopCallbackBase::attach(StopSource* source) noexcept {
    if (source == nullptr) {
        return;
    }
    if (source->stop_requested()) {
        fn_(this);
        return;
    }
    source->link(this);
}
inline void StopCallbackBase::detach() noexcept {
    if (source_ != nullptr) {
        source_->unlink(this);
    }
}

/// \brief Cheap view of a StopSource; a default token can never be stopped.
class StopToken {
public:
    StopToken() noexcept = default;
    explicit StopToken(StopSource& source) noexcept : source_(&source) {}
    [[nodiscard]] bool stop_requested() const noexcept {
        return source_ != nullptr && source_->stop_requested();
    }
    [[nodiscard]] bool stop_possible() const noexcept { return source_ != nullptr; }
    [[nodiscard]] StopSource* source() const noexcept { return source_; }
    friend bool operator==(StopToken, StopToken) noexcept = default;

private:
    StopSource* source_ = nullptr;
};

/// \brief RAII registration of `fn` with a token; runs `fn` at once if stop was already
/// requested. Must not outlive the token's source.
template <class F>
class StopCallback final : public StopCallbackBase {
public:
    StopCallback(StopToken token, F fn) noexcept
        : StopCallbackBase(&invoke), fn_(std::move(fn)) {
        attach(token.source());
    }
    ~StopCallback() { detach(); }

private:
    static void invoke(StopCallbackBase* self) noexcept { static_cast<StopCallback*>(self)->fn_(); }
    F fn_;
};

/// \brief A re-armable, non-template stop registration for awaiters (I/O operations, timers).
///
/// The awaiter arms it when it suspends and disarms it when the operation completes; the
/// handler runs on the reactor thread from inside StopSource::request_stop().
class StopRegistration final : public StopCallbackBase {
public:
    using Handler = void (*)(void* context) noexcept;
    StopRegistration() noexcept : StopCallbackBase(&invoke) {}
    StopRegistration(const StopRegistration&) = delete;
    StopRegistration& operator=(const StopRegistration&) = delete;
    ~StopRegistration() { detach(); }
    /// Runs `handler` at once if stop was already requested.
    void arm(StopToken token, Handler handler, void* context) noexcept {
        handler_ = handler;
        context_ = context;
        attach(token.source());
    }
    void disarm() noexcept { detach(); }

private:
    static void invoke(StopCallbackBase* self) noexcept {
        auto* r = static_cast<StopRegistration*>(self);
        r->handler_(r->context_);
    }
    Handler handler_ = nullptr;
    void* context_ = nullptr;
};

} // namespace ringwork::runtime
