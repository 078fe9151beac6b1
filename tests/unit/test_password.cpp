#include <catch2/catch.hpp>
#include <set>

#include "qvmail/password.hpp"

TEST_CASE("every hash method hashes and verifies", "[password]") {
    for (auto m : {qv::HashMethod::md5, qv::HashMethod::sha256, qv::HashMethod::sha512, qv::HashMethod::yescrypt}) {
        INFO(qv::to_string(m));
        std::string h = qv::hash_password("s3cret pass", m);
        CHECK(qv::hash_method_of(h) == m);
        CHECK(qv::is_crypt_hash(h));
        CHECK(qv::verify_password("s3cret pass", h));
        CHECK_FALSE(qv::verify_password("s3cret pas", h));
        CHECK(qv::hash_password("s3cret pass", m) != h);  // a fresh salt every time
    }
    CHECK(qv::hash_password("x", qv::kDefaultHashMethod).starts_with("$6$"));
}

TEST_CASE("hash method names and numbers", "[password]") {
    CHECK(qv::parse_hash_method("SHA-512") == qv::HashMethod::sha512);
    CHECK(qv::parse_hash_method("sha512") == qv::HashMethod::sha512);
    CHECK(qv::parse_hash_method("3") == qv::HashMethod::sha512);
    CHECK(qv::parse_hash_method("SHA256") == qv::HashMethod::sha256);
    CHECK(qv::parse_hash_method("md5") == qv::HashMethod::md5);
    CHECK(qv::parse_hash_method("yescrypt") == qv::HashMethod::yescrypt);
    CHECK_FALSE(qv::parse_hash_method("DES"));
    CHECK_FALSE(qv::parse_hash_method("0"));
    CHECK_FALSE(qv::parse_hash_method("bcrypt"));
}

TEST_CASE("only crypt strings pass as already hashed", "[password]") {
    CHECK_FALSE(qv::is_crypt_hash("plain text"));
    CHECK_FALSE(qv::is_crypt_hash("$6$salt"));
    CHECK_FALSE(qv::is_crypt_hash("abc:def"));
    CHECK_FALSE(qv::verify_password("x", "not a hash at all"));
}

TEST_CASE("random passwords", "[password]") {
    std::set<std::string> seen;
    for (int i = 0; i < 50; ++i) {
        auto p = qv::random_password(16);
        CHECK(p.size() == 16);
        CHECK(p.find_first_not_of("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") == std::string::npos);
        seen.insert(p);
    }
    CHECK(seen.size() == 50);
}

TEST_CASE("unacceptable clear-text passwords", "[password]") {
    CHECK(qv::password_problem(""));
    CHECK(qv::password_problem("tab\there"));
    CHECK(qv::password_problem(std::string(129, 'x')));
    CHECK_FALSE(qv::password_problem("fine pass phrase"));
}
