// SPDX-License-Identifier: MIT
// JSON for the response path: a pool-allocated nlohmann::basic_json and a serializer that
// writes straight into a ByteBuffer. The only public header that includes nlohmann/json.
#pragma once

#include <ringwork/http/buffer.hpp>
#include <ringwork/runtime/frame_pool.hpp>

#include <nlohmann/json.hpp>

#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ringwork::web {

/// \brief Stateless allocator over the calling thread's runtime::FramePool (size classes up to
/// 4 KiB, heap above): after warm-up, building JSON values on a reactor allocates nothing from
/// the heap. Blocks freed on another thread join that thread's pool (values may cross threads).
template <class T>
struct PoolAllocator {
    using value_type = T;
    using propagate_on_container_move_assignment = std::true_type;
    using is_always_equal = std::true_type;

    PoolAllocator() noexcept = default;
    template <class U>
    PoolAllocator(const PoolAllocator<U>&) noexcept {} // NOLINT(google-explicit-constructor)

    [[nodiscard]] T* allocate(std::size_t n) {
        // Checked here, where T is complete (at class scope basic_json may not be yet).
        static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__,
                      "FramePool blocks have operator new's default alignment only");
        if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) {
            throw std::bad_array_new_length{};
        }
        return static_cast<T*>(runtime::FramePool::allocate(bytes(n)));
    }
    void deallocate(T* p, std::size_t n) noexcept { runtime::FramePool::deallocate(p, bytes(n)); }

    template <class U>
    bool operator==(const PoolAllocator<U>&) const noexcept {
        return true;
    }

private:
    // Whole FramePool size classes (a zero-sized request takes the smallest): allocate() and
    // deallocate() then agree on the block size even once the thread's pool is gone (values
    // destroyed by static or thread_local destructors), where FramePool itself would allocate
    // the raw size but free the class size.
    static constexpr std::size_t bytes(std::size_t n) noexcept {
        constexpr std::size_t kGranule = runtime::FramePool::kGranularity;
        const std::size_t size = n == 0 ? 1 : n * sizeof(T);
        return size <= runtime::FramePool::kMaxPooledSize
                   ? (size + kGranule - 1) / kGranule * kGranule
                   : size;
    }
};

/// \brief The string type of Json (pool-allocated; strings up to 15 bytes live inline).
using JsonString = std::basic_string<char, std::char_traits<char>, PoolAllocator<char>>;
/// \brief The byte container behind Json::binary_t (pool-allocated).
using JsonBinary = std::vector<std::uint8_t, PoolAllocator<std::uint8_t>>;

namespace detail {
/// True for (R, L) = (JsonString, std::string) in either order. Both sides are deduced, so nothing
/// converts implicitly into the operators below (a Json converts to JsonString, which would be
/// ambiguous).
template <class R, class L>
concept OtherStringOf = (std::same_as<L, JsonString> && std::same_as<R, std::string>) ||
                        (std::same_as<L, std::string> && std::same_as<R, JsonString>);
} // namespace detail

/// \brief JsonString and std::string compare by content. Found by ADL; nlohmann needs them for
/// `j[std::string]`, `contains`, `find`, `count`, `erase` and `value` with a std::string key.
template <class L, detail::OtherStringOf<L> R>
bool operator==(const L& a, const R& b) noexcept {
    return std::string_view(a) == std::string_view(b);
}
template <class L, detail::OtherStringOf<L> R>
std::strong_ordering operator<=>(const L& a, const R& b) noexcept {
    return std::string_view(a) <=> std::string_view(b);
}

/// \brief nlohmann::basic_json whose objects, arrays, strings and binaries come from the frame
/// pool. Use it for response bodies: `c.json({{"id", id}, {"tags", {"a", "b"}}})`. It is a full
/// nlohmann value (initializer lists, std::string / std::string_view in and out, parse, dump,
/// iterate, compare); values may outlive the request and move between threads.
///
/// Differences from nlohmann::json, all due to string_t not being std::string:
/// - `get<std::string>()` works, but `value(key, "literal")` and `dump()` return JsonString;
///   write `std::string(j.dump())` where a std::string is needed.
/// - nlohmann 3.11.2 does not compile `flatten()`, `unflatten()`, `patch()`, `diff()` or the
///   `from_cbor/msgpack/ubjson/bjdata/bson` readers for a custom string type (nlohmann/json#4019,
///   fixed upstream after 3.11.2). Convert to nlohmann::json for those; `to_*` writers work.
using Json =
    nlohmann::basic_json<std::map, std::vector, JsonString, bool, std::int64_t, std::uint64_t,
                         double, PoolAllocator, nlohmann::adl_serializer, JsonBinary>;

} // namespace ringwork::web

/// \brief std::allocator for every basic_json built on PoolAllocator (Json among them) draws from
/// the frame pool too. nlohmann 3.11.2's destructor flattens a non-empty array or object into a
/// `std::vector<basic_json>` with the default allocator whatever AllocatorType is, so without
/// this every destroyed container (initializer-list temporaries included) costs a heap
/// allocation. A partial specialization for program-defined types, as [namespace.std] allows;
/// it also serves any `std::vector<Json>` of the program.
template <template <typename, typename, typename...> class ObjectType,
          template <typename, typename...> class ArrayType, class StringType, class BooleanType,
          class NumberIntegerType, class NumberUnsignedType, class NumberFloatType,
          template <typename, typename = void> class JSONSerializer, class BinaryType>
class std::allocator<nlohmann::basic_json<ObjectType, ArrayType, StringType, BooleanType,
                                          NumberIntegerType, NumberUnsignedType, NumberFloatType,
                                          ringwork::web::PoolAllocator, JSONSerializer, BinaryType>>
    : public ringwork::web::PoolAllocator<nlohmann::basic_json<
          ObjectType, ArrayType, StringType, BooleanType, NumberIntegerType, NumberUnsignedType,
          NumberFloatType, ringwork::web::PoolAllocator, JSONSerializer, BinaryType>> {
public:
    using value_type =
        nlohmann::basic_json<ObjectType, ArrayType, StringType, BooleanType, NumberIntegerType,
                             NumberUnsignedType, NumberFloatType, ringwork::web::PoolAllocator,
                             JSONSerializer, BinaryType>;
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;
    using propagate_on_container_move_assignment = std::true_type;
    using is_always_equal = std::true_type;

    allocator() noexcept = default;
    allocator(const allocator&) noexcept = default;
    template <class U>
    allocator(const allocator<U>&) noexcept {} // NOLINT(google-explicit-constructor)
    allocator& operator=(const allocator&) noexcept = default;
    ~allocator() = default;
};

namespace ringwork::web {

namespace detail {
/// Append `s` as a JSON string literal (quotes included), escaped exactly as nlohmann's
/// `dump(-1, ' ', false, error_handler_t::replace)`: `\" \\ \b \f \n \r \t`, other control
/// characters as `\u00xx`, valid UTF-8 as is, each maximal invalid subsequence as U+FFFD.
void write_json_string(http::ByteBuffer& out, std::string_view s);
/// Append `value` as nlohmann prints a double (grisu2, e.g. `1.0`, `1e+300`); NaN and infinities
/// print as `null`.
void write_json_double(http::ByteBuffer& out, double value);
void write_json_int(http::ByteBuffer& out, std::int64_t value);
void write_json_uint(http::ByteBuffer& out, std::uint64_t value);

/// Any nlohmann::basic_json specialization (nlohmann::json, ordered_json, Json, ...).
template <class T>
concept BasicJsonValue = nlohmann::detail::is_basic_json<T>::value;

/// Thrown by write_json for a value nested deeper than kMaxJsonDepth.
[[noreturn]] void throw_json_too_deep();
} // namespace detail

/// \brief The deepest nesting of arrays and objects that Context::json_body() accepts and
/// write_json() writes. Both (like nlohmann's dump()) recurse once per level on the thread's
/// stack, so a body of a million `[` would otherwise overflow it: 512 levels is far beyond real
/// documents (serde_json stops at 128) and a few hundred KiB of stack at most.
inline constexpr std::size_t kMaxJsonDepth = 512;

/// \brief Whether no array or object in `text` is nested deeper than `limit` levels (brackets
/// inside strings do not count). One pass, no allocation; says nothing about validity.
[[nodiscard]] bool json_nesting_within(std::string_view text, std::size_t limit) noexcept;

namespace detail {
template <BasicJsonValue BasicJson>
void write_json_nested(http::ByteBuffer& out, const BasicJson& value, std::size_t depth);
} // namespace detail

/// \brief Serialize `value` compactly at the end of `out`, byte for byte as
/// `value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)` would, without any
/// intermediate string: no heap allocation once `out` is large enough. Works for
/// nlohmann::json, nlohmann::ordered_json, ringwork::web::Json and any other basic_json.
///
/// One deliberate difference: a `discarded` value (only produced by parse callbacks or a failed
/// non-throwing parse) is written as `null`, where dump() writes the non-JSON `<discarded>`.
/// A value nested deeper than kMaxJsonDepth throws std::length_error (part of it may have been
/// written to `out` by then).
template <detail::BasicJsonValue BasicJson>
void write_json(http::ByteBuffer& out, const BasicJson& value) {
    detail::write_json_nested(out, value, 0);
}

namespace detail {
template <BasicJsonValue BasicJson>
void write_json_nested(http::ByteBuffer& out, const BasicJson& value, std::size_t depth) {
    using nlohmann::detail::value_t;
    using object_t = typename BasicJson::object_t;
    using array_t = typename BasicJson::array_t;
    using string_t = typename BasicJson::string_t;
    using binary_t = typename BasicJson::binary_t;

    switch (value.type()) {
    case value_t::null:
    case value_t::discarded:
        out.append(std::string_view("null"));
        return;
    case value_t::boolean:
        out.append(*value.template get_ptr<const typename BasicJson::boolean_t*>()
                       ? std::string_view("true")
                       : std::string_view("false"));
        return;
    case value_t::number_integer:
        detail::write_json_int(
            out, *value.template get_ptr<const typename BasicJson::number_integer_t*>());
        return;
    case value_t::number_unsigned:
        detail::write_json_uint(
            out, *value.template get_ptr<const typename BasicJson::number_unsigned_t*>());
        return;
    case value_t::number_float:
        if constexpr (std::is_same_v<typename BasicJson::number_float_t, double>) {
            detail::write_json_double(out, *value.template get_ptr<const double*>());
        } else {
            // nlohmann prints other float types with their own precision: defer to it.
            const auto text = value.dump(-1, ' ', false, BasicJson::error_handler_t::replace);
            out.append(std::string_view(text.data(), text.size()));
        }
        return;
    case value_t::string: {
        const string_t& s = *value.template get_ptr<const string_t*>();
        detail::write_json_string(out, std::string_view(s.data(), s.size()));
        return;
    }
    case value_t::binary: { // as dump(): {"bytes":[1,2],"subtype":null}
        const binary_t& bytes = *value.template get_ptr<const binary_t*>();
        out.append(std::string_view("{\"bytes\":["));
        bool first = true;
        for (const auto byte : bytes) {
            if (!first) {
                out.append(',');
            }
            first = false;
            detail::write_json_uint(out, byte);
        }
        out.append(std::string_view("],\"subtype\":"));
        if (bytes.has_subtype()) {
            detail::write_json_uint(out, bytes.subtype());
        } else {
            out.append(std::string_view("null"));
        }
        out.append('}');
        return;
    }
    case value_t::array: {
        if (++depth > kMaxJsonDepth) {
            throw_json_too_deep();
        }
        const array_t& array = *value.template get_ptr<const array_t*>();
        out.append('[');
        bool first = true;
        for (const BasicJson& element : array) {
            if (!first) {
                out.append(',');
            }
            first = false;
            write_json_nested(out, element, depth);
        }
        out.append(']');
        return;
    }
    case value_t::object: {
        if (++depth > kMaxJsonDepth) {
            throw_json_too_deep();
        }
        const object_t& object = *value.template get_ptr<const object_t*>();
        out.append('{');
        bool first = true;
        for (const auto& [key, element] : object) {
            if (!first) {
                out.append(',');
            }
            first = false;
            detail::write_json_string(out, std::string_view(key.data(), key.size()));
            out.append(':');
            write_json_nested(out, element, depth);
        }
        out.append('}');
        return;
    }
    }
    out.append(std::string_view("null")); // not reached: every value_t is handled above
}
} // namespace detail

} // namespace ringwork::web
