// SPDX-License-Identifier: MIT
// PerIpTable: connection counts per client IP, shared by the reactors (sharded locks).
#pragma once

#include <ringwork/io/socket.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace ringwork::http::detail {

/// \brief 16-byte key of an IPv4 (mapped) or IPv6 address; all zero when unknown.
struct IpKey {
    std::array<std::uint8_t, 16> bytes{};
    friend bool operator==(const IpKey&, const IpKey&) = default;
    [[nodiscard]] bool known() const noexcept {
        for (auto b : bytes) {
            if (b != 0) {
                return true;
            }
        }
        return false;
    }
    static IpKey of(const io::SocketAddress& a) noexcept {
        IpKey k;
        if (a.family() == AF_INET) {
            const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a.storage); // NOLINT: sockaddr API
            k.bytes[10] = 0xFF;
            k.bytes[11] = 0xFF;
            std::memcpy(k.bytes.data() + 12, &v4->sin_addr, 4);
        } else if (a.family() == AF_INET6) {
            const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a.storage); // NOLINT: sockaddr API
            std::memcpy(k.bytes.data(), &v6->sin6_addr, 16);
        }
        return k;
    }
};

struct IpKeyHash {
    std::size_t operator()(const IpKey& k) const noexcept {
        std::uint64_t a = 0;
        std::uint64_t b = 0;
        std::memcpy(&a, k.bytes.data(), 8);
        std::memcpy(&b, k.bytes.data() + 8, 8);
        return static_cast<std::size_t>((a * 0x9E3779B97F4A7C15ULL) ^ (b + 0x632BE59BD9B4E019ULL + (a << 6)));
    }
};

/// \brief fasthttp's perIPConnCounter, sharded so reactors rarely meet on a lock. Touched
/// once per accept and once per close, never per request.
class PerIpTable {
public:
    /// Count one more connection from `key`; false (and nothing counted) if that would exceed
    /// `limit`.
    bool acquire(const IpKey& key, std::size_t limit) {
        Shard& s = shard(key);
        std::lock_guard lock(s.mutex);
        std::uint32_t& n = s.counts[key];
        if (n >= limit) {
            if (n == 0) {
                s.counts.erase(key);
            }
            return false;
        }
        ++n;
        return true;
    }
    void release(const IpKey& key) noexcept {
        Shard& s = shard(key);
        std::lock_guard lock(s.mutex);
        auto it = s.counts.find(key);
        if (it != s.counts.end() && --it->second == 0) {
            s.counts.erase(it);
        }
    }

private:
    struct Shard {
        std::mutex mutex;
        std::unordered_map<IpKey, std::uint32_t, IpKeyHash> counts;
    };
    Shard& shard(const IpKey& key) noexcept { return shards_[IpKeyHash{}(key) % shards_.size()]; }
    std::array<Shard, 64> shards_;
};

} // namespace ringwork::http::detail
