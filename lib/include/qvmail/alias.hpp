// Aliases of virtual domains: an address without a mailbox whose mail goes where its delivery lines say
// (IndiMail's valias table; qmail-local's .qmail-<alias> in the domain directory for the files store).
// See valias(8). A line is one of
//   &user@domain   (or user@domain)  forward a copy
//   |command                         run a program, the message on its standard input
//   /path/to/Maildir/  ./Maildir/    deliver into a Maildir (absolute, or under the domain directory)
// Delivery (local_delivery.hpp) takes a mailbox of the same name first, as IndiMail's vdelivermail does.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/address.hpp"
#include "qvmail/domain.hpp"

namespace qv {

class Store;
struct Paths;

struct AliasEntry {
    std::string address;             // alias@domain
    std::vector<std::string> lines;  // its delivery lines, in order
};

// Checks one delivery line and returns it as it is stored: blanks around it gone, a forward's address
// lower-cased and written "&user@domain". Throws Error 65 naming the line: empty, a line end, NUL or other
// control byte, a forward that is not an address, a program with no command, a path that is not a
// Maildir (mbox files are not delivered to), a path with "..".
std::string check_alias_line(std::string_view line);

// The aliases of one domain (`local` empty) or one alias, or of every domain (`domain` empty), sorted.
// Throws Error 68 for a domain that does not exist.
std::vector<AliasEntry> list_aliases(const Paths& paths, Store& store, std::string_view domain, std::string_view local = {});

// The aliases, in every domain, with a line forwarding to `target` (IndiMail's valias -S).
std::vector<AliasEntry> aliases_forwarding_to(const Paths& paths, Store& store, const Address& target);

// Makes the forwards to `from`, in the aliases of every domain of this host, forward to `to` instead;
// the changes are staged in `store` for the caller's change to write. `from` is an address (matched by
// its real domain, so a forward to user@alias-domain counts) or "@domain", every address of a domain
// (then `to` is "@newdomain"). Returns the aliases changed (alias@domain).
std::vector<std::string> retarget_forwards(const Paths& paths, Store& store, const std::string& from,
                                           const std::string& to);

struct AliasChange {
    enum Kind { insert, remove, update } kind = insert;
    std::string line;      // insert: the new line; remove: the line to remove; update: the new line
    std::string old_line;  // update: the line it replaces
};

struct AliasChangeResult {
    std::string line, old_line;         // the change's lines as stored (check_alias_line)
    std::vector<std::string> lines;     // the alias's lines afterwards (none: the alias is gone)
    bool mailbox_first = false;         // a mailbox of that name exists and takes the mail first
    std::vector<std::string> steps;
};

// Changes one alias, in one transaction. Throws Error 65 for a bad line or a change that would make
// mail loop between local aliases (naming the loop), 9 for a line the alias has already, 6 for a line
// it does not have (remove, update), 68 for no such domain; nothing is changed then.
AliasChangeResult change_alias(const Paths& paths, Store& store, const Address& alias, const AliasChange& change,
                               bool dry_run);

}  // namespace qv
