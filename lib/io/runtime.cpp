// SPDX-License-Identifier: MIT
// Runtime: starts one reactor per thread, optional CPU pinning, SIGINT/SIGTERM handling.
#include <ringwork/io/runtime.hpp>

#include <fmt/format.h>

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <system_error>

namespace ringwork::io {

Runtime::Runtime(RuntimeOptions options)
    : options_(options)
    , threads_(options.threads != 0 ? options.threads : std::max(1U, std::thread::hardware_concurrency())) {
    reactors_.assign(threads_, nullptr);
    done_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (done_fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "eventfd for Runtime");
    }
}

Runtime::~Runtime() { ::close(done_fd_); }

void Runtime::stop() noexcept {
    // seq_cst on both flags (Dekker): either this sees started_, or the reactor threads see
    // stop_requested_ right after they start.
    stop_requested_.store(true);
    if (!started_.load()) {
        return;
    }
    std::lock_guard lock(error_mutex_); // reactors_ entries are cleared under it
    for (Reactor* r : reactors_) {
        if (r != nullptr) {
            r->stop();
        }
    }
}

void Runtime::thread_main(unsigned index, const ThreadMain& main) {
    if (options_.pin_threads) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(index % std::max(1U, std::thread::hardware_concurrency()), &set);
        ::pthread_setaffinity_np(::pthread_self(), sizeof(set), &set);
    }
    std::optional<Reactor> reactor;
    try {
        reactor.emplace(options_.reactor);
        std::lock_guard lock(error_mutex_);
        reactors_[index] = &*reactor;
    } catch (...) {
        std::lock_guard lock(error_mutex_);
        if (!error_) {
            error_ = std::current_exception();
        }
    }
    ready_count_.fetch_add(1, std::memory_order_acq_rel);
    // Wait until every thread has its reactor (or failed): reactor(i) must be valid for all.
    while (ready_count_.load(std::memory_order_acquire) < threads_) {
        std::this_thread::yield();
    }
    bool failed = false;
    {
        std::lock_guard lock(error_mutex_);
        failed = static_cast<bool>(error_);
    }
    if (reactor && !failed) {
        started_.store(true);
        if (stop_requested_.load()) {
            reactor->stop();
        }
        try {
            reactor->spawn(main(*reactor, index));
            reactor->run();
        } catch (...) {
            std::lock_guard lock(error_mutex_);
            if (!error_) {
                error_ = std::current_exception();
            }
        }
    }
    if (finished_count_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = ::write(done_fd_, &one, sizeof one);
    }
    // Keep the reactor alive, and serving what other threads post to it (a last submit_to
    // hop), until every thread is done.
    while (finished_count_.load(std::memory_order_acquire) < threads_) {
        if (reactor) {
            reactor->run_once(false);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::lock_guard lock(error_mutex_);
    reactors_[index] = nullptr;
}

void Runtime::run(ThreadMain main) {
    sigset_t mask;
    sigset_t old_mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    int sig_fd = -1;
    if (options_.handle_signals) {
        // Block before creating the threads so they inherit the mask and the signal reaches
        // only the signalfd read here.
        ::pthread_sigmask(SIG_BLOCK, &mask, &old_mask);
        sig_fd = ::signalfd(-1, &mask, SFD_CLOEXEC);
    }
    std::vector<std::thread> threads;
    threads.reserve(threads_);
    for (unsigned i = 0; i < threads_; ++i) {
        threads.emplace_back([this, i, &main] { thread_main(i, main); });
    }
    bool stopping = false;
    for (;;) {
        pollfd fds[2] = {{done_fd_, POLLIN, 0}, {sig_fd, POLLIN, 0}};
        const int n = ::poll(fds, sig_fd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if ((fds[0].revents & POLLIN) != 0) {
            break;
        }
        if (sig_fd >= 0 && (fds[1].revents & POLLIN) != 0) {
            signalfd_siginfo info{};
            [[maybe_unused]] const auto r = ::read(sig_fd, &info, sizeof info);
            if (!stopping) {
                stopping = true;
                fmt::print(stderr, "ringwork: signal {} received, stopping gracefully\n", info.ssi_signo);
                stop();
            } else {
                fmt::print(stderr, "ringwork: second signal, exiting now\n");
                std::_Exit(130);
            }
        }
    }
    for (std::thread& t : threads) {
        t.join();
    }
    if (sig_fd >= 0) {
        ::close(sig_fd);
        ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    }
    if (error_) {
        std::rethrow_exception(error_);
    }
}

} // namespace ringwork::io
