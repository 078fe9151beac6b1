// Delivery into a Maildir, with Maildir++ quotas: what qmail-local and IndiMail's vdelivermail do when
// they put a message into a mailbox, as a library for qmail-send's in-process local delivery and for
// vdelivermail.
//
// A delivery is two steps, so that a caller can share the cost of making it durable:
//   maildir_write    creates tmp/<unique name>, writes the added header lines and the message, and (with
//                    `sync`) fsyncs the file;
//   maildir_publish  links the file into new/ under its final name (the moment of delivery: link(2)
//                    never replaces an existing name), removes the tmp/ name and (with `sync`) fsyncs
//                    new/.
// vdelivermail passes sync=true to both (two flushes a message, as qmail-local with a synced directory).
// qmail-send delivering many messages at once writes them all with sync=false, flushes each file
// system once (syncfs, see group_sync.hpp), publishes them all with sync=false and flushes once more:
// two flushes a batch. A message is never in new/ before its data is durable.
//
// Unique names follow the Maildir specification: tmp/<sec>.M<usec>P<pid>Q<n>.<host> (n counts the
// deliveries of this process, from any thread), and new/<the same>,S=<size> (the Maildir++ size, which
// IMAP servers and the quota read without a stat). In <host>, '/' is written \057 and ':' \072.
//
// Quotas are IndiMail's pw_shell strings (user.hpp's Quota): "NOQUOTA", "<bytes>", "<bytes>S",
// "<count>C", "<bytes>S,<count>C". A limit of 0 is no limit, as Maildir++ readers (Courier, Dovecot,
// IndiMail, which takes a "0S" maildirsize for no quota) take it.
//
// Usage is kept in the Maildir++ file `maildirsize` in the Maildir's root: its first line is the quota
// ("1000000S,200C"), each further line "<bytes> <count>" is a change (negative for removals); the usage
// is their sum. A delivery appends one line with one write (O_APPEND), so concurrent deliveries do not
// need a lock; the file is recalculated from the messages themselves when it is missing, unreadable or
// malformed, when its quota differs from the mailbox's, or when it has reached 5120 bytes (Maildir++'s
// rule), and replaced atomically (mode 0644; given the Maildir's owner when running as root). The
// count covers new/ and cur/ of the Maildir and of every folder (.Name directories; symbolic links,
// such as shared folders, are not followed).
//
// Folders (Maildir++): "Sub" or ".Sub" names <maildir>/.Sub, a Maildir of its own that holds an empty
// `maildirfolder` file (which tells Maildir++ software that the quota lives one level up). Delivering
// into a missing folder creates it with the Maildir's mode (and owner, as root). The IMAP servers'
// subscription lists (Courier's courierimapsubscribed, Dovecot's subscriptions) are theirs to keep, in
// formats that differ, so they are not touched: a new folder shows up in a client once subscribed.
//
// Every failure throws qv::Error (MaildirError for failed system calls, which keeps errno so that a
// caller can tell a full disk or a file-system quota from other trouble); qmail's callers take all of
// them as temporary failures.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "qvmail/atomic_file.hpp"
#include "qvmail/error.hpp"
#include "qvmail/user.hpp"

namespace qv {

// A failed system call during a delivery: the message names the call, the file and strerror; errnum()
// keeps errno.
class MaildirError : public Error {
public:
    MaildirError(Exit code, const std::string& message, int errnum) : Error(code, message), errnum_(errnum) {}
    int errnum() const noexcept { return errnum_; }
    bool quota_exceeded() const noexcept;  // EDQUOT: the file system's quota for this user
    bool disk_full() const noexcept;       // ENOSPC

private:
    int errnum_;
};

// ---- quota ----

// Reads a stored quota strictly: "NOQUOTA" (any case: unlimited), "<bytes>", "<bytes>S", "<count>C",
// "<bytes>S,<count>C" (either order; S and C in either case; a number without a letter is the size
// when it comes first, the count when second). Surrounding blanks are ignored. nullopt for anything
// else: an empty string, k/m/g suffixes (those are input forms, see normalize_quota), overflow.
// (user.hpp's parse_quota is the lenient reader used for display.)
std::optional<Quota> try_parse_quota(std::string_view text);
// No size limit and no count limit (absent or 0).
bool quota_unlimited(const Quota& q) noexcept;
// The first line of maildirsize for `q`: "1000000S,200C", "1000000S", "200C"; "0S" when unlimited.
std::string format_maildirsize_quota(const Quota& q);

// ---- usage (Maildir++ maildirsize) ----

// The usage of the Maildir `maildir` (its root, not a folder), from maildirsize, recalculated (and the
// file rewritten) as described above; `recalculate` forces that (IndiMail recalculates before refusing
// a message that does not fit, since a client may have removed messages without updating the file).
// With an unlimited quota a missing maildirsize is not created (the usage is counted each time).
// A maildirsize that cannot be rewritten is left as it is: the counted usage is still returned.
// Throws MaildirError (74, or 66 for a directory that cannot be read) when the messages cannot be
// counted.
// (user.hpp's one-argument maildir_usage is for display: it reads maildirsize, or counts, and writes nothing.)
MaildirUsage maildir_usage(const std::filesystem::path& maildir, const Quota& q, bool recalculate = false);
// The sums of maildir/maildirsize as deliveries keep them, read only (nothing is counted or written);
// nullopt when the file is missing, unreadable, malformed or due for a recount (5120 bytes or more).
std::optional<MaildirUsage> maildirsize_usage(const std::filesystem::path& maildir);
// Appends "<bytes> <count>\n" to maildir/maildirsize in one write (O_APPEND). Does nothing when the file
// does not exist (the next maildir_usage counts the messages). Throws MaildirError 74.
void maildirsize_add(const std::filesystem::path& maildir, std::int64_t bytes, std::int64_t count);
// Whether one more message of `size` bytes fits: usage + size <= the size limit and usage count + 1 <=
// the count limit (a limit of 0 or none: no limit).
bool fits_quota(const Quota& q, const MaildirUsage& usage, std::uint64_t size) noexcept;

// ---- Maildirs and folders ----

// Whether `p` holds tmp, new and cur directories (symbolic links followed). False when any is missing
// (or `p` is not a directory); throws Error 66/74 when `p` cannot be looked into (permissions, I/O), so
// that a mailbox that cannot be seen is not taken for one that does not exist.
bool is_maildir(const std::filesystem::path& p);

// The directory to deliver into for `folder` of `maildir`: the Maildir itself for "", "." and "INBOX"
// (any case), else <maildir>/.<folder> (a leading '.' is added when missing, as IndiMail does with
// MAILDIRFOLDER; IMAP's "INBOX.Work" is ".Work"). A missing folder is created (folder directory, maildirfolder, tmp,
// new, cur, with the Maildir's mode, and its owner when running as root); with `sync`, the directories whose entries
// changed are fsynced. Throws Error 65 for a folder name with '/', a NUL, an empty part ("..x", "x.")
// or more than 255 bytes, MaildirError 73 when the folder cannot be created.
std::filesystem::path maildir_folder(const std::filesystem::path& maildir, std::string_view folder, bool sync = true);

// ---- delivery ----

struct MaildirFile {
    std::filesystem::path dir;  // the Maildir (or folder) delivered into
    std::string tmp_name;       // its name in tmp/
    std::string new_name;       // its name in new/ (after maildir_publish: the name it got)
    std::uint64_t size = 0;     // bytes written: head and message
    dev_t dev = 0;              // the file system, for the caller's syncfs
};

// Writes dir/tmp/<unique name>: `head` (e.g. "Return-Path: <x>\nDelivered-To: y\n"), then the bytes of
// `fd` from `offset` to its end (copy_file_range, else sendfile, else read/write; `fd`'s own file
// position is not used or moved, so threads may share it; a pipe is read from where it is; fd < 0: no
// body). With `sync`, fsyncs the file. `owner`: give the file to that uid/gid (a root caller
// delivering for a mailbox owner). `dir` is a Maildir or a folder (see maildir_folder).
// Throws MaildirError (73: the file cannot be created; 74: writing, syncing or closing failed; 77: the
// owner cannot be given) and leaves no tmp file behind.
MaildirFile maildir_write(const std::filesystem::path& dir, std::string_view head, int fd, off_t offset, bool sync,
                          const std::optional<Owner>& owner = std::nullopt);
// Links tmp/<tmp_name> to new/<new_name> (on EEXIST, another unique name is taken and f.new_name
// updated; on a file system without hard links, renameat2 with RENAME_NOREPLACE), removes the tmp/ name
// and, with `sync`, fsyncs new/. Returns the path in new/. Throws MaildirError (73, or 74 when new/
// could not be synced, in which case the message is in new/ but may not be durable). When the link
// fails the tmp file stays: call maildir_discard.
std::filesystem::path maildir_publish(MaildirFile& f, bool sync);
// Removes the tmp file (the caller gave up). Never throws.
void maildir_discard(const MaildirFile& f) noexcept;

// ---- loop check ----

// qmail-local's loop check: whether the header of the message read from `fd` at `offset` (up to the
// first empty line, or a line that is neither a field nor a continuation; at most the first 64 KiB)
// has a Delivered-To field whose value equals `address` (ASCII case ignored, surrounding blanks
// ignored). Reads with pread(2): `fd` must be seekable; its file position is not moved. Throws
// MaildirError 74 when it cannot be read.
bool has_delivered_to(int fd, off_t offset, std::string_view address);

}  // namespace qv
