// SPDX-License-Identifier: MIT
// Umbrella header for applications: runtime, io, http and web, the common names lifted into
// ringwork:: (ringwork::App, ringwork::Context, ringwork::Task, ringwork::mw::logger(), ...).
#pragma once

#include <ringwork/io/buffer.hpp>
#include <ringwork/io/error.hpp>
#include <ringwork/io/reactor.hpp>
#include <ringwork/io/runtime.hpp>
#include <ringwork/io/socket.hpp>
#include <ringwork/io/timer.hpp>
#include <ringwork/runtime/frame_pool.hpp>
#include <ringwork/runtime/result.hpp>
#include <ringwork/runtime/scheduler.hpp>
#include <ringwork/io/timeout.hpp>
#include <ringwork/runtime/stop_token.hpp>
#include <ringwork/runtime/sync.hpp>
#include <ringwork/runtime/when.hpp>
#include <ringwork/runtime/task.hpp>
#include <ringwork/http/server.hpp>
#include <ringwork/web/app.hpp>
#include <ringwork/web/compress.hpp>
#include <ringwork/web/context.hpp>
#include <ringwork/web/error.hpp>
#include <ringwork/web/form.hpp>
#include <ringwork/web/json.hpp>
#include <ringwork/web/metrics.hpp>
#include <ringwork/web/middleware.hpp>
#include <ringwork/web/static.hpp>

namespace ringwork {
using io::offload;
using io::Reactor;
using io::Runtime;
using io::sleep_for;
using io::sleep_until;
using io::spawn;
using io::submit_to;
using io::sync_wait;
using io::with_timeout;
using runtime::Channel;
using runtime::Mutex;
using runtime::when_all;
using runtime::when_any;
using runtime::Result;
using runtime::StopSource;
using runtime::StopToken;
using runtime::Task;
using web::App;
using web::AppOptions;
using web::Context;
using web::Cookie;
using web::HttpError;
using web::Json;
using web::Next;
using web::SseEvent;
namespace mw = web::mw;
} // namespace ringwork
