// The password hash methods by name and number: what a domain's hash_method file and PASSWORD_HASH
// say, apart from the hashing itself (password.hpp), so that reading a domain needs no libcrypt.
#pragma once

#include <optional>
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

}  // namespace qv
