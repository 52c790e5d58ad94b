// SPDX-License-Identifier: MIT
// SleepAwaiter: a wheel node in the awaiting frame, removed on cancellation.
#include <ringwork/io/timer.hpp>

#include "io/reactor_impl.hpp"

namespace ringwork::io {

SleepAwaiter::~SleepAwaiter() {
    if (linked()) {
        detail::current_impl().timers().remove(*this); // frame destroyed while sleeping
    }
}

void SleepAwaiter::suspend(std::coroutine_handle<> h, runtime::StopToken token) noexcept {
    waiter_ = h;
    fire_ = &on_fire;
    detail::current_impl().timers().add(*this, detail::ReactorImpl::to_tick_ceil(when_));
    stop_.arm(token, &on_stop, this);
}

void SleepAwaiter::on_fire(TimerNode* node) noexcept {
    auto* self = static_cast<SleepAwaiter*>(node);
    self->stop_.disarm();
    detail::current_impl().schedule(self->waiter_);
}

void SleepAwaiter::on_stop(void* p) noexcept {
    auto* self = static_cast<SleepAwaiter*>(p);
    if (self->linked()) {
        detail::current_impl().timers().remove(*self);
        self->cancelled_ = true;
        detail::current_impl().schedule(self->waiter_);
    }
}

} // namespace ringwork::io
