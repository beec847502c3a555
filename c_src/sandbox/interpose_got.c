/*
 * interpose_got.c - points the GOT entries of libpython and of extension
 * modules at the wrappers of interpose.c.
 *
 * A shared object calls an imported function through its GOT (PLT jump slots
 * and GLOB_DAT entries).  For libpython (at install) and for each extension
 * module as it is created (the _imp.create_dynamic guard calls
 * interpose_object_at with the address of the module's def), this walks the
 * object's dynamic relocations and writes a wrapper's address into every
 * entry whose symbol interpose_hook() knows, making the page writable for the
 * moment of the store when RELRO made it read-only.  The real function a
 * wrapper calls is resolved with dlsym (in the object itself for ffi_call,
 * which may be a private copy), never taken from the entry: an unresolved
 * lazy entry would re-bind itself.  Our own library is never patched.
 *
 * Threads: patch_lock serializes patching (interpreters with a GIL of their
 * own may create modules at once); each entry is one aligned pointer store,
 * so a thread calling through it meanwhile gets the real function or the
 * wrapper, both correct.  Linux x86-64 and AArch64 (ELF RELA); elsewhere
 * interposition is off and the other two layers still hold.
 */
#include "sandbox/sandbox_int.h"
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__)
#define R_SLOT R_X86_64_JUMP_SLOT
#define R_GLOB R_X86_64_GLOB_DAT
#elif defined(__aarch64__)
#define R_SLOT R_AARCH64_JUMP_SLOT
#define R_GLOB R_AARCH64_GLOB_DAT
#endif

#ifdef R_SLOT
/* The protection of the page that holds addr, from /proc/self/maps. */
static int page_prot(uintptr_t addr)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    int prot = -1;
    while (f && prot < 0 && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char p[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && addr >= lo && addr < hi)
            prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
                   (p[2] == 'x' ? PROT_EXEC : 0);
    }
    if (f)
        fclose(f);
    return prot;
}

static void write_slot(void **slot, void *value)
{
    if (*slot == value)
        return;
    int prot = page_prot((uintptr_t)slot);
    if (prot < 0)
        return;
    uintptr_t page = (uintptr_t)slot & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
    size_t len = (uintptr_t)slot + sizeof(void *) - page;
    if (!(prot & PROT_WRITE) && mprotect((void *)page, len, prot | PROT_WRITE) != 0)
        return;
    __atomic_store_n(slot, value, __ATOMIC_RELEASE);
    if (!(prot & PROT_WRITE))
        mprotect((void *)page, len, prot);
}

static uintptr_t dyn_ptr(uintptr_t base, uintptr_t p)
{
    return p < base ? base + p : p; /* glibc relocates these in place, musl not */
}

typedef struct {
    uintptr_t base;
    const ElfW(Dyn) *dyn;
    const char *path;
} object_t;

static void patch_relocs(const object_t *o, const ElfW(Rela) *r, size_t size,
                         const ElfW(Sym) *symtab, const char *strtab)
{
    for (size_t i = 0; r && i < size / sizeof *r; i++) {
        unsigned long type = ELF64_R_TYPE(r[i].r_info);
        if (type != R_SLOT && type != R_GLOB)
            continue;
        const hook_t *h = interpose_hook(strtab + symtab[ELF64_R_SYM(r[i].r_info)].st_name);
        if (!h)
            continue;
        if (h->real && !*h->real) {
            void *lib = h->local ? dlopen(o->path, RTLD_NOW | RTLD_NOLOAD) : NULL;
            void *real = dlsym(h->local ? lib : RTLD_DEFAULT, h->name);
            if (lib)
                dlclose(lib);
            if (!real)
                continue; /* leave the call alone rather than break it */
            __atomic_store_n(h->real, real, __ATOMIC_RELEASE);
        }
        write_slot((void **)(o->base + r[i].r_offset), h->wrapper);
    }
}

static void patch_object(const object_t *o)
{
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const ElfW(Rela) *jmprel = NULL, *rela = NULL;
    size_t jmpsz = 0, relasz = 0;
    for (const ElfW(Dyn) *d = o->dyn; d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_SYMTAB: symtab = (const void *)dyn_ptr(o->base, d->d_un.d_ptr); break;
        case DT_STRTAB: strtab = (const void *)dyn_ptr(o->base, d->d_un.d_ptr); break;
        case DT_JMPREL: jmprel = (const void *)dyn_ptr(o->base, d->d_un.d_ptr); break;
        case DT_PLTRELSZ: jmpsz = d->d_un.d_val; break;
        case DT_RELA: rela = (const void *)dyn_ptr(o->base, d->d_un.d_ptr); break;
        case DT_RELASZ: relasz = d->d_un.d_val; break;
        }
    }
    if (!symtab || !strtab)
        return;
    patch_relocs(o, jmprel, jmpsz, symtab, strtab);
    patch_relocs(o, rela, relasz, symtab, strtab);
}

typedef struct {
    uintptr_t addr;
    object_t found;
} search_t;

static int find_object(struct dl_phdr_info *info, size_t size, void *data)
{
    UNUSED(size);
    search_t *s = data;
    const ElfW(Dyn) *dyn = NULL;
    int inside = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)lo;
        if (ph->p_type == PT_LOAD && s->addr >= lo && s->addr < lo + ph->p_memsz)
            inside = 1;
    }
    if (!inside || !dyn)
        return 0;
    s->found = (object_t){info->dlpi_addr, dyn, info->dlpi_name};
    return 1;
}

static int same_object(const void *a, const void *b)
{
    Dl_info x, y;
    return dladdr(a, &x) && dladdr(b, &y) && x.dli_fbase == y.dli_fbase;
}

static ErlNifMutex *patch_lock;
static uintptr_t patched[512]; /* load addresses of the objects done */
static size_t npatched;

int interpose_init(void)
{
    if (!patch_lock)
        patch_lock = enif_mutex_create("py.sandbox.interpose");
    return patch_lock ? 0 : -1;
}

/* patch_lock not held. */
static void patch_once(const object_t *o)
{
    enif_mutex_lock(patch_lock);
    /* Each object once (Python never unloads an extension module); builtin
     * modules all live in libpython, walked at install. */
    int seen = 0;
    for (size_t i = 0; i < npatched && !seen; i++)
        seen = patched[i] == o->base;
    if (!seen) {
        patch_object(o); /* outside the dl_iterate_phdr callback: it may dlopen */
        if (npatched < sizeof patched / sizeof *patched)
            patched[npatched++] = o->base;
    }
    enif_mutex_unlock(patch_lock);
}

static int find_by_base(struct dl_phdr_info *info, size_t size, void *data)
{
    UNUSED(size);
    search_t *s = data;
    if (info->dlpi_addr != s->addr)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            s->found = (object_t){info->dlpi_addr,
                                  (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr),
                                  info->dlpi_name};
    return 1;
}

/* Never our own library (the wrappers call the real functions), nor the
 * VM's executable (base 0 for a non-PIE one). */
static int is_self(uintptr_t base)
{
    Dl_info me;
    return dladdr((const void *)&interpose_object_at, &me) && (uintptr_t)me.dli_fbase == base;
}

void interpose_object_at(const void *addr)
{
    if (!policy_loaded() || same_object(addr, (const void *)&interpose_object_at))
        return;
    search_t s = {(uintptr_t)addr, {0, NULL, NULL}};
    if (!dl_iterate_phdr(find_object, &s) || !s.found.dyn)
        return;
    patch_once(&s.found);
}

int interpose_install(char *err, size_t errlen)
{
    UNUSED(err);
    UNUSED(errlen);
    interpose_classes();
    interpose_object_at((const void *)&Py_InitializeFromConfig); /* libpython */
    return 0;
}

static int add_base(struct dl_phdr_info *info, size_t size, void *data)
{
    UNUSED(size);
    objset_t *s = data;
    if (s->n < sizeof s->base / sizeof *s->base)
        s->base[s->n++] = info->dlpi_addr;
    return 0;
}

void interpose_snapshot(objset_t *s)
{
    s->n = 0;
    dl_iterate_phdr(add_base, s);
}

/* Every object loaded since the snapshot was taken: a thread of the VM
 * that loads a library at that very moment would have it patched too,
 * which only routes its calls through the same checks. */
void interpose_new_since(const objset_t *before)
{
    if (!policy_loaded())
        return;
    objset_t now;
    interpose_snapshot(&now);
    for (size_t i = 0; i < now.n; i++) {
        int known = 0;
        for (size_t j = 0; j < before->n && !known; j++)
            known = before->base[j] == now.base[i];
        if (known || !now.base[i])
            continue;
        search_t s = {now.base[i], {0, NULL, NULL}};
        if (dl_iterate_phdr(find_by_base, &s) && s.found.dyn && !is_self(s.found.base))
            patch_once(&s.found);
    }
}
#else
int interpose_init(void)
{
    return 0;
}

void interpose_object_at(const void *addr)
{
    UNUSED(addr);
}

int interpose_install(char *err, size_t errlen)
{
    UNUSED(err);
    UNUSED(errlen);
    interpose_classes();
    return 0;
}

void interpose_snapshot(objset_t *s)
{
    s->n = 0;
}

void interpose_new_since(const objset_t *s)
{
    UNUSED(s);
}
#endif
