// The header fields of an RFC 5322 message, as the mail filters see them: folded lines unfolded, RFC 2047
// encoded words decoded to UTF-8, and (as IndiMail's vfilter does) the headers of MIME parts collected
// after the message's own. The body itself is not kept.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace qv {

struct HeaderField {
    std::string name;   // as written
    std::string value;  // unfolded, encoded words decoded, surrounding blanks removed
    unsigned part = 0;  // 0: the message's own header; n: the header of the n-th MIME part
};

struct Message {
    std::vector<HeaderField> headers;
    std::size_t size = 0;          // bytes
    unsigned parts = 0;            // MIME parts whose headers were read
    bool parts_truncated = false;  // more than kMaxMimeParts parts, or nested deeper than kMaxMimeDepth
};

constexpr unsigned kMaxMimeParts = 256;
constexpr unsigned kMaxMimeDepth = 8;

// Reads a message with LF or CRLF line ends; an mbox "From " line first is skipped. The header ends at
// the first empty line (or at a line that is neither a field nor a continuation, which starts the
// body). Never throws for malformed input: whatever can be read is returned.
Message parse_message(std::string_view raw);

// Unfolds a field: a line break (CRLF or LF) and the blanks that start the next line become one space,
// as mail readers show a folded Subject. A bare line break not followed by a blank goes.
std::string unfold(std::string_view value);

// Decodes RFC 2047 encoded words (=?charset?B|Q?text?=) to UTF-8 (charsets through iconv); blanks
// between two adjacent encoded words go. Words that do not decode are left as they are.
std::string decode_encoded_words(std::string_view value);

// Lower case for comparing text without regard to case: ASCII, and the other letters of UTF-8 text
// (Unicode simple lower-case mapping). Bytes that are not UTF-8 stay as they are.
std::string fold_case(std::string_view text);

// The addresses (addr-spec, lower-cased) of an address-list field such as To or Cc: display names,
// comments and group names are dropped.
std::vector<std::string> header_addresses(std::string_view value);

// The value of a parameter of a structured field such as Content-Type ("boundary", "charset"):
// quotes and escapes removed; empty when absent.
std::string header_parameter(std::string_view value, std::string_view name);

}  // namespace qv
