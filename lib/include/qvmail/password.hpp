// Password hashing and checking with libcrypt (crypt(3) formats, as IndiMail stores them in pw_passwd).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace qv {

// IndiMail's numbering: 1 MD5, 2 SHA-256, 3 SHA-512, 4 YESCRYPT (0, DES, is refused as too weak).
enum class HashMethod { md5 = 1, sha256 = 2, sha512 = 3, yescrypt = 4 };

constexpr HashMethod kDefaultHashMethod = HashMethod::sha512;

// Accepts the names (MD5, SHA-256, SHA256, SHA-512, SHA512, YESCRYPT, any case) and the numbers 1-4.
std::optional<HashMethod> parse_hash_method(std::string_view text);
std::string_view to_string(HashMethod m) noexcept;  // MD5, SHA-256, SHA-512, YESCRYPT
// The method a stored hash was made with, from its prefix ($1$, $5$, $6$, $y$).
std::optional<HashMethod> hash_method_of(std::string_view hash) noexcept;

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
