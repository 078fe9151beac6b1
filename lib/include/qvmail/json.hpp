// JSON values for --json output, built without pulling nlohmann/json (a heavy header) into every
// command: the one translation unit that knows nlohmann/json is json.cpp. Objects keep the order
// in which their keys are set.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qv {

class Json {
public:
    Json();  // null
    Json(std::nullptr_t) : Json() {}
    Json(const char* s) : Json(std::string_view(s)) {}
    Json(const std::string& s) : Json(std::string_view(s)) {}
    Json(std::string_view s);
    Json(const std::vector<std::string>& strings);
    template <std::integral T>
    Json(T v) : Json() {
        if constexpr (std::is_same_v<T, bool>)
            set_bool(v);
        else if constexpr (std::is_signed_v<T>)
            set_int(static_cast<std::int64_t>(v));
        else
            set_uint(static_cast<std::uint64_t>(v));
    }
    ~Json();
    Json(const Json& other);
    Json(Json&& other) noexcept;
    Json& operator=(Json other) noexcept;

    static Json object();
    static Json array();

    Json& set(std::string_view key, Json value);  // object member (replaces an existing key in place)
    Json& push(Json value);                       // array element
    // One line of JSON; bytes that are not UTF-8 are replaced, so output never fails.
    std::string dump() const;

    struct Impl;

private:
    void set_bool(bool v);
    void set_int(std::int64_t v);
    void set_uint(std::uint64_t v);
    std::unique_ptr<Impl> impl_;
};

}  // namespace qv
