#include "qvmail/json.hpp"

#include <nlohmann/json.hpp>

namespace qv {

struct Json::Impl {
    nlohmann::ordered_json v;
};

Json::Json() : impl_(std::make_unique<Impl>()) {}
Json::Json(std::string_view s) : Json() {
    impl_->v = std::string(s);
}
Json::Json(const std::vector<std::string>& strings) : Json() {
    impl_->v = strings;
}
Json::~Json() = default;
Json::Json(const Json& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
Json::Json(Json&& other) noexcept : impl_(std::move(other.impl_)) {}
Json& Json::operator=(Json other) noexcept {
    impl_ = std::move(other.impl_);
    return *this;
}

Json Json::object() {
    Json j;
    j.impl_->v = nlohmann::ordered_json::object();
    return j;
}

Json Json::array() {
    Json j;
    j.impl_->v = nlohmann::ordered_json::array();
    return j;
}

void Json::set_bool(bool v) {
    impl_->v = v;
}
void Json::set_int(std::int64_t v) {
    impl_->v = v;
}
void Json::set_uint(std::uint64_t v) {
    impl_->v = v;
}

Json& Json::set(std::string_view key, Json value) {
    impl_->v[std::string(key)] = std::move(value.impl_->v);
    return *this;
}

Json& Json::push(Json value) {
    impl_->v.push_back(std::move(value.impl_->v));
    return *this;
}

std::string Json::dump() const {
    return impl_->v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace qv
