#include "qvmail/hash_method.hpp"

#include <string>

namespace qv {

std::optional<HashMethod> parse_hash_method(std::string_view text) {
    std::string t;
    for (char c : text)
        if (c != '-' && c != '_') t += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    if (t == "MD5" || t == "1") return HashMethod::md5;
    if (t == "SHA256" || t == "2") return HashMethod::sha256;
    if (t == "SHA512" || t == "3") return HashMethod::sha512;
    if (t == "YESCRYPT" || t == "4") return HashMethod::yescrypt;
    return std::nullopt;
}

std::string_view to_string(HashMethod m) noexcept {
    switch (m) {
        case HashMethod::md5:
            return "MD5";
        case HashMethod::sha256:
            return "SHA-256";
        case HashMethod::sha512:
            return "SHA-512";
        case HashMethod::yescrypt:
            return "YESCRYPT";
    }
    return "SHA-512";
}

std::optional<HashMethod> hash_method_of(std::string_view hash) noexcept {
    if (hash.starts_with("$1$")) return HashMethod::md5;
    if (hash.starts_with("$5$")) return HashMethod::sha256;
    if (hash.starts_with("$6$")) return HashMethod::sha512;
    if (hash.starts_with("$y$")) return HashMethod::yescrypt;
    return std::nullopt;
}

}  // namespace qv
