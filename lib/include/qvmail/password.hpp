// Password hashing and checking with libcrypt (crypt(3) formats, as IndiMail stores them in pw_passwd).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "qvmail/hash_method.hpp"

namespace qv {

// A fresh hash of `password` with a random salt. Throws Error 70 if libcrypt fails.
std::string hash_password(std::string_view password, HashMethod method);
// Whether `password` matches `hash` (constant time in the hash length).
bool verify_password(std::string_view password, std::string_view hash);
// Whether `hash` looks like a crypt(3) string this module can verify (for -e, "already hashed").
bool is_crypt_hash(std::string_view hash) noexcept;

// Overwrites a secret in memory in a way the compiler cannot drop (OPENSSL_cleanse).
void wipe(std::string& secret) noexcept;
void wipe(char* data, std::size_t size) noexcept;

// A random password of `length` characters from letters and digits (no look-alikes), from getrandom().
std::string random_password(std::size_t length);

// Why a clear-text password is unacceptable (empty, a control character, too long), or nullopt.
std::optional<std::string> password_problem(std::string_view password);

}  // namespace qv
