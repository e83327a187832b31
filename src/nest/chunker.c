/* Content-defined chunking: a gear rolling hash with FastCDC's normalized chunking, written here
 * because no Debian package offers CDC as a C library (casync ships a tool, not a library;
 * golang-github-restic-chunker-dev is Go, python3-fastchunking Python). The algorithm is Xia et
 * al., "FastCDC" (USENIX ATC 2016): hash h = (h << 1) + gear[byte]; a boundary is where the
 * masked bits of h are zero.
 *
 * Parameters (chunker.h), and why:
 *   - average 64 KiB: matches qcow2's default cluster size, so a guest write dirties about one
 *     chunk; a 1 GiB disk is ~16k chunk files, a count the filesystem and one-request-per-chunk
 *     transfer handle well. Smaller (8 KiB) dedups a little better but multiplies files, fsyncs,
 *     manifest size and HTTP round trips by 8; larger (1 MiB) wastes most of a chunk per small
 *     write.
 *   - min 16 KiB (= avg/4): bytes before it are not hashed at all (FastCDC's cut-point skipping,
 *     the main speed-up) and tiny chunks cannot occur. max 256 KiB (= 4 x avg): bounds memory and
 *     the worst case of content with no boundary (long runs of one byte value, e.g. zeros).
 *   - normalized chunking, level 2: between MIN and the "normal" point a harder mask (avg bits
 *     + 2 = 18 bits) is used, after it an easier one (avg bits - 2 = 14 bits), which squeezes the
 *     chunk-size distribution around the average (fewer tiny and huge chunks, better dedup per
 *     chunk). The normal point is 48 KiB, not 64: with cut-point skipping the mean chunk is about
 *     MIN + the distance to the first hit, and on 64 MiB of random data the measured mean was
 *     73 KiB with the normal point at 64 KiB, 61 KiB at 48 KiB (bench/nest-dedup prints it).
 *   - the masks are the TOP bits of h: bit 63 - k depends on the last 64 - k bytes, so a
 *     boundary is decided by a 46..64-byte window (FastCDC spreads mask bits for the same
 *     reason). Hashing starts 64 bytes before MIN, so the window is full at the first candidate
 *     and boundaries depend only on nearby content, never on where the chunk began — after an
 *     insertion the chunker re-synchronises at the first boundary past the edit.
 *   - the gear table is 256 fixed 64-bit values from splitmix64 seeded with "vmatrix"
 *     (0x766d6174726978). It is part of the on-disk contract (chunk ids depend on it).
 *
 * Zero runs: a chunk whose bytes are all zero is flagged to the callback (nest_buffer_is_zero,
 * one early-exit scan), and the store never stores it. A long zero run is cut every MAX bytes
 * (the gear hash of a zero run is a constant that does not hit the masks), so holes in a disk
 * image become a run of identical zero chunks that manifests record as one zero extent. */
#include "nest/chunker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define NORMAL_SIZE (48u * 1024)
#define MASK_S (~0ULL << (64 - 18)) /* before NORMAL_SIZE: harder, 1 in 2^18 */
#define MASK_L (~0ULL << (64 - 14)) /* after NORMAL_SIZE: easier, 1 in 2^14 */
#define WINDOW 64u                  /* bytes that influence the top bit of h */
#define BUF_SIZE (4u * NEST_CHUNK_MAX)

_Static_assert(NEST_CHUNK_MIN >= WINDOW && NEST_CHUNK_MIN < NORMAL_SIZE && NORMAL_SIZE < NEST_CHUNK_MAX,
               "chunk size parameters out of order");

static const uint64_t gear[256] = {
        0xa441113acea039a5ULL, 0xe6e3bf853a5a1440ULL, 0xc6620a4c83bb53d2ULL, 0x1fce26493a9fc48dULL,
        0x09064dd460d8a01eULL, 0x8ad0f1028a02eae1ULL, 0x5a64643ddc3165c3ULL, 0x8b834f11781f3247ULL,
        0x0bd2b5619b1e834bULL, 0x24f33d95c31ea216ULL, 0xf204c985e0df5368ULL, 0xc19e5f17a7bb9165ULL,
        0xd463964cd8ab023eULL, 0x58c61470ca03e688ULL, 0xb38594ff91c870e4ULL, 0x1aa30c8eefdf4b4cULL,
        0x7a16d1e810e99e54ULL, 0x8e09831c4008dc6aULL, 0xb3c8194d43beaa55ULL, 0x4fea8e903a36e44aULL,
        0xda6f7c25deccbf03ULL, 0x47d08d21aaa93eadULL, 0xd282743efe182f68ULL, 0xf369a18b320f630fULL,
        0x684ecdcab3ff151eULL, 0xf1f565cadf63d325ULL, 0xb6424538f75298e3ULL, 0x37512d3d1b745b9fULL,
        0x10392862786d29adULL, 0x2d72dfd64d072b4eULL, 0xb99506dce6c6e40eULL, 0xbebafd586fd8f5ccULL,
        0xee28f7745eda0791ULL, 0x67b3726640385efaULL, 0x560661f25585e7e9ULL, 0x6a2e61c5c9c82d20ULL,
        0x821b982ed964f167ULL, 0xab1808903e7f53a9ULL, 0xf3f3b54b72d2f6acULL, 0x21b6226f5a46b2f8ULL,
        0x4932500addaed63cULL, 0x494d861824265cb4ULL, 0xdc55db3904ee616fULL, 0xffc54f16d0c6ceceULL,
        0x143b806de94e12beULL, 0x71761b198355fa01ULL, 0xa0b27186c7201180ULL, 0x86af8d18737dcc81ULL,
        0xfaacec3274965629ULL, 0x5522f1b930c2fc45ULL, 0x29059fedecd8c569ULL, 0x2386fb27a287ff58ULL,
        0x5a4042e6306d3c41ULL, 0x3a88b2f511e15ce1ULL, 0x783e770306bae928ULL, 0x489decc2574ff7adULL,
        0x13d34d2d91b25b36ULL, 0xd3645c8ea8ccbe0bULL, 0x08aa2ff9a409c944ULL, 0x6be3b5bee519922fULL,
        0x9a35f43bd449afbdULL, 0x8a2f2fa77e769f08ULL, 0xc4edeb2a71d74996ULL, 0xfd6cd7370d8d38baULL,
        0xd973a13b248258e7ULL, 0xacb9e612e7dd5bf7ULL, 0x99b7fbef5e7d7491ULL, 0x90285c780e7c8a53ULL,
        0x93f53e2cf396f428ULL, 0xc1b45559ec4e7056ULL, 0xf20fbd50622632ddULL, 0x1b6f90f066991e5bULL,
        0x819db72802927e38ULL, 0x523eade8c615cecaULL, 0xe290558b07f35dadULL, 0xd2b1a706264453b2ULL,
        0xe5c62ecdcc287bd4ULL, 0xc4d91fc4b4b2f85aULL, 0xd7cc4f63818e4772ULL, 0xd579f2a7845efbd5ULL,
        0x7965a81da6245751ULL, 0xdbb51da17ec118c1ULL, 0xe7d1d5dbb8f88810ULL, 0x487a0ce4d290e434ULL,
        0x79fdfa0b65b1a6ceULL, 0x8b4d28459b4199d9ULL, 0x3fcf6b58f293c700ULL, 0x6772280da6022f18ULL,
        0xf45c95d57b87c05aULL, 0xc400906b8efba563ULL, 0xc99c582d49cea861ULL, 0x66ccc9c061da8ec9ULL,
        0x39f6d53788aa43f8ULL, 0xbf8869f097d171d4ULL, 0x6906afda1ee92a3bULL, 0x4eccfd7ebb7af4c7ULL,
        0x97dd36811522b819ULL, 0x392b00f9970faac6ULL, 0x52b5112cd2898c35ULL, 0x2e5c4f146855c4bbULL,
        0x66179f5368047b5fULL, 0xf54d404d44f39cf7ULL, 0xfd65bdb98a69cd13ULL, 0xe69d90d327131a4aULL,
        0xe4b7ab6ca468a415ULL, 0x7465b6e6680187dcULL, 0x643522ec5077c0e4ULL, 0x6dbcf93e011d6fcbULL,
        0x81c270ca358cc6daULL, 0xc730bc0baba8ec5aULL, 0x369854128fd92d12ULL, 0x27b15cb81cbf2da8ULL,
        0x41229eb9518d98a3ULL, 0x00e790ab737edef3ULL, 0xc00a95a0d61aaa99ULL, 0x6595db117f25c081ULL,
        0xb5a64b2d5c377933ULL, 0xd47485551abb2812ULL, 0xd97b460da15b5059ULL, 0xe8950d5426c32a0eULL,
        0x8c9dfe83227a3b37ULL, 0x6a1bc383828df056ULL, 0xdfa87f4ae705a4a4ULL, 0xa31301b428d04f95ULL,
        0x3473928787883a65ULL, 0xe701e865814a3844ULL, 0xd2475d276f4f5964ULL, 0x8502ee46b1aa0374ULL,
        0x1621cc8425be1f78ULL, 0xe2be7b7df76693e5ULL, 0x6256d2a08f0ca723ULL, 0xbe08501310d049b2ULL,
        0xfeaaff64c8f3df47ULL, 0x54a5a244e2bd8a20ULL, 0xb472639c43bddff9ULL, 0xad6b684f12a20f35ULL,
        0x7906d7343f282c8aULL, 0x89cfbdabe3ad58d6ULL, 0xa7f898b4c71705a5ULL, 0x73060a0f2281c574ULL,
        0xd9ec480f6bdfb316ULL, 0xe517797dc879ea8bULL, 0x1c6e0fe8248084d5ULL, 0x3e4dffedb61728d3ULL,
        0x720ffd4299e0e4e7ULL, 0x7d7d1b277769a694ULL, 0xa686b952782d705dULL, 0x3dee81d02f37ded2ULL,
        0xb2eda448c9fcc108ULL, 0x3e1b02461b87225fULL, 0x565b360af18c7692ULL, 0x955e752dc52333f9ULL,
        0xd13392ce3ceded0bULL, 0x8b0cb1181c152ba4ULL, 0xa0b53f948b2031c5ULL, 0xad5f984ca7f30b92ULL,
        0x2544b3666207af34ULL, 0xfc54e585d12b8715ULL, 0x2544bc6f3701d1c4ULL, 0x9ac152940e143ec4ULL,
        0x122db6b505386501ULL, 0x1946c215cdba199bULL, 0xb6912fdf24c8c69fULL, 0x6d515159c5e77dfcULL,
        0x9306eff89f54a0b2ULL, 0xc294651b6bd09364ULL, 0x1ba066f583511f6eULL, 0x95d438c66545a5e8ULL,
        0x471a241fd498c2f1ULL, 0x3e9e6319d2ea3031ULL, 0xd310c74e52037a73ULL, 0x0535d22723e7dcd2ULL,
        0xe93e28e221119438ULL, 0xe87e94564ac976a8ULL, 0xd15e23644cbd9626ULL, 0xf95ccfc4852d31e6ULL,
        0x6da630500bf03598ULL, 0x62dc614baf3074b2ULL, 0xd0f580d21cb29150ULL, 0xa2915f4882a4304cULL,
        0xd0a1a5b0c07d923cULL, 0x9d24d583f003da47ULL, 0xfaaafa38c9aa29eeULL, 0x816674c63080e7d4ULL,
        0xace35d7566dc43d5ULL, 0x948116eac51416c6ULL, 0x5a02ce28dc50dd56ULL, 0x0f944cd358fc1dcfULL,
        0xfefde15f7462787aULL, 0x96382764cb715e54ULL, 0xc3fe9c4736a505f6ULL, 0xa8f666fc7068ae55ULL,
        0xc95d42f93b962c11ULL, 0xc7300bc0b20d8218ULL, 0x8e8af7fc316a30eeULL, 0x3ae3a70d44e7a6b6ULL,
        0x132c60be8b4cb925ULL, 0x190a8ac1172a2f1eULL, 0xff5b3006cbd69359ULL, 0x0a4c9a68ab01d655ULL,
        0xd63f11dcd496c271ULL, 0x8118848c21d504ffULL, 0xec7dc52c75662293ULL, 0x319a23cc0c9f6e4bULL,
        0x47a2a1d616d5de4eULL, 0x02eefb2f6e378813ULL, 0x20fa53c1e491c8faULL, 0xb86d5967b43bde18ULL,
        0x4a1076bc64cebf4bULL, 0x6fdf83f3b45f12fbULL, 0xf39876e6d0c76994ULL, 0x87538d7f742fa19dULL,
        0x7afe03e18fab8f2bULL, 0x56643869b8717eaeULL, 0xca298cce3aa99526ULL, 0xeafc7b52fbcc9d15ULL,
        0x0b7e1a7cee9a2caeULL, 0x6e0f1c3a712a5363ULL, 0x92397e176da7a325ULL, 0xa861cf40c31fe7ddULL,
        0xb643b6de4bcc8221ULL, 0xf3264df85f7ab888ULL, 0x53af537436fa4fb9ULL, 0x8686ac6c22bddb90ULL,
        0xeb431aa3b33ad030ULL, 0xeca342a6728ee587ULL, 0x8c15aeb9857ae1dfULL, 0x131531aac6a30572ULL,
        0x4de3f5715f38ccd9ULL, 0x93208d1d4e805758ULL, 0x147202b878425c8dULL, 0xa8a690d9d2b33e28ULL,
        0x390c07bd53225b34ULL, 0x696fb12352547b25ULL, 0x9026b3e4c367ffbaULL, 0x928f8620b1c880d1ULL,
        0x377a1b6eb930aaabULL, 0x1c9c9307b4e4013dULL, 0x7f24ee4bab7f8c85ULL, 0xf56d7b7648f655bdULL,
        0xa338041decb51c87ULL, 0xcc56ac9737f72eabULL, 0x3629b9089e6ef2c2ULL, 0xd078dd751e9a0102ULL,
        0x8ceea17bcf8104b5ULL, 0x426a576ea662e9e7ULL, 0xcbc7dbe1cfbdc76bULL, 0xa0e42e219509da1eULL,
        0xcac8609ce9b5b57dULL, 0xf13b3626000cd783ULL, 0xd2be18ca6ca7b813ULL, 0xe3fd6e7d610993e5ULL,
        0x35ade61104d7181cULL, 0xfc503746eb7632c0ULL, 0x3b2155b4f7c3e6b8ULL, 0xefa24adbb0f0149fULL,
};

size_t nest_chunker_cut(const uint8_t *data, size_t len) {
        if (len <= NEST_CHUNK_MIN)
                return len;
        size_t end = MIN(len, (size_t)NEST_CHUNK_MAX);
        size_t normal = MIN(end, (size_t)NORMAL_SIZE);
        uint64_t h = 0;
        size_t i = NEST_CHUNK_MIN - WINDOW;
        for (; i < NEST_CHUNK_MIN; i++) /* fill the window: no boundary before MIN */
                h = (h << 1) + gear[data[i]];
        for (; i < normal; i++) {
                h = (h << 1) + gear[data[i]];
                if (!(h & MASK_S))
                        return i + 1;
        }
        for (; i < end; i++) {
                h = (h << 1) + gear[data[i]];
                if (!(h & MASK_L))
                        return i + 1;
        }
        return end;
}

bool nest_buffer_is_zero(const void *data, size_t len) {
        const uint8_t *p = data;
        if (len == 0)
                return true;
        /* p[0] == 0 and p[i] == p[i+1] for all i: libc's vectorised memcmp does the scan. */
        return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

struct nest_chunker {
        nest_chunk_cb_t cb;
        void *userdata;
        uint8_t *buf; /* BUF_SIZE bytes; [0, fill) is fed but not yet emitted */
        size_t fill;
        uint64_t offset;
        int error; /* sticky callback failure */
};

nest_chunker_t *nest_chunker_new(nest_chunk_cb_t cb, void *userdata) {
        nest_chunker_t *c = xcalloc(1, sizeof *c);
        c->cb = cb;
        c->userdata = userdata;
        c->buf = xcalloc(1, BUF_SIZE);
        return c;
}

nest_chunker_t *nest_chunker_free(nest_chunker_t *c) {
        if (!c)
                return NULL;
        free(c->buf);
        free(c);
        return NULL;
}

/* Emits every chunk that is certainly complete: one is, once MAX bytes follow its start (its cut
 * cannot move), or at the end of the stream. Keeps the rest at the front of buf. */
static int drain(nest_chunker_t *c, bool eof) {
        size_t pos = 0;
        int r = 0;
        while (c->fill - pos >= NEST_CHUNK_MAX || (eof && c->fill > pos)) {
                const uint8_t *p = c->buf + pos;
                size_t n = nest_chunker_cut(p, c->fill - pos);
                r = c->cb(p, n, nest_buffer_is_zero(p, n), c->userdata);
                if (r < 0) {
                        c->error = r;
                        return r;
                }
                pos += n;
        }
        memmove(c->buf, c->buf + pos, c->fill - pos);
        c->fill -= pos;
        return 0;
}

int nest_chunker_feed(nest_chunker_t *c, const void *data, size_t len) {
        const uint8_t *p = data;
        if (c->error)
                return c->error;
        while (len > 0) {
                /* After drain(), fill < MAX, so each round moves at least BUF_SIZE - MAX bytes. */
                size_t n = MIN(len, BUF_SIZE - c->fill);
                memcpy(c->buf + c->fill, p, n);
                c->fill += n;
                c->offset += n;
                p += n;
                len -= n;
                int r = drain(c, false);
                if (r < 0)
                        return r;
        }
        return 0;
}

int nest_chunker_finish(nest_chunker_t *c) {
        if (c->error)
                return c->error;
        int r = drain(c, true);
        if (r < 0)
                return r;
        c->fill = 0;
        c->offset = 0;
        return 0;
}

uint64_t nest_chunker_offset(const nest_chunker_t *c) { return c->offset; }
