/* A plugin file is checked as an ELF shared object of this machine before
 * dlopen sees it: dlopen maps every loadable segment, and a segment that
 * reaches past the end of a truncated file is a SIGBUS when touched, not an
 * error. The checks read the headers with pread and never map the file. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry_impl.h"

#if UINTPTR_MAX == UINT64_MAX
typedef Elf64_Ehdr elf_ehdr;
typedef Elf64_Phdr elf_phdr;
#define HOST_CLASS ELFCLASS64
#else
typedef Elf32_Ehdr elf_ehdr;
typedef Elf32_Phdr elf_phdr;
#define HOST_CLASS ELFCLASS32
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_DATA ELFDATA2LSB
#else
#define HOST_DATA ELFDATA2MSB
#endif

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#elif defined(__i386__)
#define HOST_MACHINE EM_386
#endif

#define MAX_PHDRS 256

static bd_status bad(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bd_status bad(const char *path, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return bd_fail(BD_E_PLUGIN, "plugin '%s': elf: %s", path, detail);
}

/* [off, off + len) lies inside a file of `size` bytes (no overflow). */
static bool inside(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

static bd_status check_ident(const char *path, const elf_ehdr *h)
{
    if (memcmp(h->e_ident, ELFMAG, SELFMAG) != 0)
        return bad(path, "starts with %02x %02x %02x %02x, expected the ELF"
                   " magic 7f 45 4c 46 (not a shared object)", h->e_ident[0],
                   h->e_ident[1], h->e_ident[2], h->e_ident[3]);
    if (h->e_ident[EI_CLASS] != HOST_CLASS)
        return bad(path, "ELF class %u, expected %u (%d-bit, as this bdrun)",
                   h->e_ident[EI_CLASS], HOST_CLASS, (int)sizeof(void *) * 8);
    if (h->e_ident[EI_DATA] != HOST_DATA)
        return bad(path, "byte order %u, expected %u (this machine's)",
                   h->e_ident[EI_DATA], HOST_DATA);
    if (h->e_type != ET_DYN)
        return bad(path, "ELF type %u, expected %u (a shared object)",
                   h->e_type, ET_DYN);
#ifdef HOST_MACHINE
    if (h->e_machine != HOST_MACHINE)
        return bad(path, "built for machine %u, expected %u (this machine's)",
                   h->e_machine, HOST_MACHINE);
#endif
    return BD_OK;
}

/* Every segment dlopen maps, and the dynamic section, lie inside the
 * file's `size` bytes. */
static bd_status check_segments(const char *path, const elf_phdr *ph, int n,
                                uint64_t size)
{
    bool any_load = false;
    for (int i = 0; i < n; i++) {
        if (ph[i].p_type != PT_LOAD && ph[i].p_type != PT_DYNAMIC)
            continue;
        any_load |= ph[i].p_type == PT_LOAD;
        if (!inside(ph[i].p_offset, ph[i].p_filesz, size))
            return bad(path, "segment %d (%s) holds bytes %llu to %llu, past"
                       " the end of the file (%llu bytes): truncated or"
                       " damaged", i, ph[i].p_type == PT_LOAD ? "load" : "dynamic",
                       (unsigned long long)ph[i].p_offset,
                       (unsigned long long)ph[i].p_offset
                           + (unsigned long long)ph[i].p_filesz,
                       (unsigned long long)size);
        if (ph[i].p_type == PT_LOAD && ph[i].p_filesz > ph[i].p_memsz)
            return bad(path, "segment %d holds %llu bytes of file in %llu of"
                       " memory, expected at most its memory size", i,
                       (unsigned long long)ph[i].p_filesz,
                       (unsigned long long)ph[i].p_memsz);
    }
    if (!any_load)
        return bad(path, "no loadable segment, expected at least one");
    return BD_OK;
}

static bd_status check_headers(const char *path, int fd, uint64_t size)
{
    elf_ehdr h;
    memset(&h, 0, sizeof h);
    ssize_t got = pread(fd, &h, sizeof h, 0);
    if (got >= SELFMAG && memcmp(h.e_ident, ELFMAG, SELFMAG) != 0)
        return check_ident(path, &h); /* names the bytes found */
    if (got != (ssize_t)sizeof h)
        return bad(path, "%llu bytes, expected at least an ELF header of %zu",
                   (unsigned long long)size, sizeof h);
    BD_TRY(check_ident(path, &h));
    if (h.e_phentsize != sizeof(elf_phdr) || h.e_phnum < 1 || h.e_phnum > MAX_PHDRS)
        return bad(path, "%u program headers of %u bytes, expected 1 to %d of"
                   " %zu", h.e_phnum, h.e_phentsize, MAX_PHDRS, sizeof(elf_phdr));
    uint64_t table = (uint64_t)h.e_phnum * sizeof(elf_phdr);
    if (!inside(h.e_phoff, table, size))
        return bad(path, "program headers at bytes %llu to %llu, past the end"
                   " of the file (%llu bytes): truncated or damaged",
                   (unsigned long long)h.e_phoff,
                   (unsigned long long)(h.e_phoff + table),
                   (unsigned long long)size);
    if (h.e_shnum > 0
        && !inside(h.e_shoff, (uint64_t)h.e_shnum * h.e_shentsize, size))
        return bad(path, "section headers at byte %llu (%u of %u bytes), past"
                   " the end of the file (%llu bytes): truncated or damaged",
                   (unsigned long long)h.e_shoff, h.e_shnum, h.e_shentsize,
                   (unsigned long long)size);
    elf_phdr ph[MAX_PHDRS];
    if (pread(fd, ph, table, (off_t)h.e_phoff) != (ssize_t)table)
        return bad(path, "cannot read its program headers: %s", strerror(errno));
    return check_segments(path, ph, h.e_phnum, size);
}

bd_status bd_plugin_check_elf(const char *path, const char *real)
{
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bd_fail(BD_E_PLUGIN, "plugin '%s': open: %s", path, strerror(errno));
    struct stat st;
    bd_status s = fstat(fd, &st) != 0
                ? bad(path, "cannot stat: %s", strerror(errno))
                : !S_ISREG(st.st_mode) ? bad(path, "not a regular file")
                : check_headers(path, fd, (uint64_t)st.st_size);
    close(fd);
    return s;
}
