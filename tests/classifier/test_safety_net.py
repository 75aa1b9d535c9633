"""Tests for the multilingual safety net (classifier/safety_net.py and classifier/lexicon/)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier import safety_net
from classifier.categories import LANGUAGES, RESTRICTED_CATEGORIES
from classifier.safety_net import LexiconError, SafetyNetHit, normalise, scan, scan_all

SEA, FRAUD, STAFF, SAFETY = RESTRICTED_CATEGORIES
CORPUS_DIR = Path(__file__).resolve().parents[2] / "classifier" / "data" / "corpus"

# Realistic restricted messages, written for these tests (not copied from the corpus): several per
# category per language, with euphemisms, SMS spelling, elongation, harakat/tatweel and letter variants.
RESTRICTED: dict[str, list[tuple[str, str]]] = {
    "en": [
        (SEA, "the escort said i must be nice to him if i want a seat on the first flight"),
        (SEA, "Caller reports that a driver asked her to spend the night with him to keep her place on the list."),
        (SEA, "interpreter keeps texting me at 2am and asked me to come to his room to discuss my case"),
        (SEA, "the guard touched me at the gate pleeease help"),
        (FRAUD, "they want a gift for the list before the interview, everybody pays"),
        (FRAUD, "guard asked for money for tea before letting us in, 10 dollars, no receipt"),
        (FRAUD, "a man is selling places on the next bus for 300 usd"),
        (FRAUD, "Caller was asked to pay 50 dollars for the stamp on the exit permit."),
        (STAFF, "the guard hit my son with a stick in front of everyone"),
        (STAFF, "officer threatened to remove us from the list if we complain again"),
        (STAFF, "the escort called my wife a dirty animal"),
        (STAFF, "the driver was drunk and shouting at the children"),
        (SAFETY, "my husband beats me every night i am afraid to go back to the room"),
        (SAFETY, "there is a small boy alone at the bus station, his family left without him"),
        (SAFETY, "i want to kill myself, i cannot wait anymore"),
        (SAFETY, "smugglers are offering the young men a boat to italy"),
        (SAFETY, "her father wants to marry her to an old man before we travel, forced marriage"),
    ],
    "fr": [
        (SEA, "l'escorte m'a dit que je dois être gentille avec lui pour avoir une place"),
        (SEA, "il veut que je passe la nuit avec lui pour signer mon dossier"),
        (SEA, "le chauffeur m'a touchée dans le car, j'ai peur"),
        (FRAUD, "le gardien demande quelque chose pour le thé avant l'entretien"),
        (FRAUD, "il faut un petit cadeau pour que notre nom soit sur la liste"),
        (FRAUD, "ils vendent les places du prochain vol 200 euros"),
        (STAFF, "le gardien a frappé mon fils avec un bâton"),
        (STAFF, "l'agent m'a menacé de retirer ma famille de la liste si je me plains"),
        (STAFF, "l'agent a pris nos passeports et refuse de les rendre"),
        (SAFETY, "mon mari me frappe tous les soirs"),
        (SAFETY, "un petit garçon est seul à la gare, sans parents"),
        (SAFETY, "je veux mourir, je n'en peux plus"),
        (SAFETY, "des passeurs proposent aux jeunes de traverser la mer"),
    ],
    "es": [
        (SEA, "el chofer me dijo que tengo que ser amable con él si quiero el asiento"),
        (SEA, "el guardia me tocó la pierna en el bus"),
        (SEA, "me pidió que fuera a su cuarto en la noche para hablar de mi caso"),
        (FRAUD, "el guardia pide dinero para el refresco antes de la entrevista"),
        (FRAUD, "están vendiendo los lugares en la lista, 300 dólares"),
        (FRAUD, "nos cobró 20 dólares sin recibo"),
        (STAFF, "el guardia golpeó a mi hijo con un palo"),
        (STAFF, "me amenazó con sacarme de la lista si me quejo"),
        (STAFF, "el oficial se quedó con nuestros pasaportes y no los quiere devolver"),
        (SAFETY, "mi esposo me pega todos los días"),
        (SAFETY, "hay un niño solito en la terminal, está sin sus padres"),
        (SAFETY, "ya no quiero vivir, me quiero morir"),
        (SAFETY, "unos coyotes le ofrecen a mi hijo cruzar la frontera"),
    ],
    "ar": [
        (SEA, "المترجم طلب مني أن أزوره في غرفته بالفندق بالليل"),
        (SEA, "السواق قال لازم تكوني لطيفة معه لتحصلي على مقعد"),
        (SEA, "الحارس يلمس البنات عند التفتيش"),
        (SEA, "الموظـــف قال بدو ينام معي مقابل اسمي بالقائمة"),
        (FRAUD, "الحارس يطلب حق الشاي قبل ما يدخلنا عالمكتب"),
        (FRAUD, "قالوا لازم نجيب هدية صغيرة للمسؤول حتى ينزل اسمنا بالقائمة"),
        (FRAUD, "الموظف طلب ٢٠٠ دولار مقابل مكان في الرحلة الجاية"),
        (STAFF, "الحارس ضرب أخي على وجهه أمام الناس"),
        (STAFF, "الموظف هددني اذا اشتكيت رح يشطب اسمي"),
        (STAFF, "السائق كان سكران وريحة الكحول طالعة منه"),
        (SAFETY, "زوجي يضربني كل يوم وأنا خايفة"),
        (SAFETY, "أبوي بدو يزوجني لابن عمي وأنا عمري ١٥"),
        (SAFETY, "في طفل صغير لوحده عند الباب بدون أهل"),
        (SAFETY, "بدي موت ما عاد فيني أتحمل"),
        (SAFETY, "المُهَرِّب يطلب مصاري ويهددنا"),
    ],
    "fa": [
        (SEA, "دریور گفت اگه چوکی میخایی باید همرایم مهربان باشی"),
        (SEA, "ترجمان گفت شب بیا به اتاقش که در باره دوسیه گپ بزنیم"),
        (SEA, "یک کارمند به من دست زد و پیام‌های عاشقانه میفرستد"),
        (FRAUD, "محافظ تا پول چای ندهیم ما را داخل نمیمانه"),
        (FRAUD, "کارمند گفت ۲۰۰ دالر بتی نامت ده لست میایه"),
        (FRAUD, "بسته‌های کمک را در بازار میفروشند"),
        (STAFF, "محافظ برادرم را پیش مردم سیلی زد"),
        (STAFF, "کارمند تهدید کرد اگر شکایت کنی نامت را از لست خط میزنم"),
        (STAFF, "کارمند پاسپورت ما را گرفته و پس نمیدهد"),
        (SAFETY, "شوهرم هر شب مرا لت میکند"),
        (SAFETY, "قاچاقبر پول میخواهد و تهدید میکند"),
        (SAFETY, "دیگر نمیخواهم زندگی کنم، میخواهم بمیرم"),
        (SAFETY, "پدرم میخواهد مرا به زور شوهر بدهد"),
    ],
    "ps": [
        (SEA, "ژباړونکي وویل د شپې خپلې کوټې ته راشه"),
        (SEA, "اسکورت په الوتکه کې لاس راپورې کاوه"),
        (SEA, "یو رضاکار وايي که زما ملګرې شې نوم به دې په لیست کې کړم"),
        (FRAUD, "کارمند د چای پیسې وغوښتې چې نوم لیست ته ور داخل کړي"),
        (FRAUD, "د مهر پیسې یې واخیستې رسید یې رانکړ"),
        (FRAUD, "جعلي اسناد جوړوي یو سړی دلته"),
        (STAFF, "کارمند زما ورور ته سوک ورکړ"),
        (STAFF, "کارمند ګواښ کوي چې پرواز دې لغوه کوم"),
        (STAFF, "ساتونکی نشه و او چیغې یې وهلې"),
        (SAFETY, "میړه مې هره شپه ما وهي"),
        (SAFETY, "پلار مې په زور واده راته کوي"),
        (SAFETY, "قاچاقبر دلته ګرځي او ځوانان غولوي"),
    ],
    "uk": [
        (SEA, "супровідник сказав, що місце буде, якщо я буду з ним ласкавою"),
        (SEA, "охоронець кличе до себе в номер вночі"),
        (SEA, "водій пропонував переспати з ним за місце в автобусі"),
        (FRAUD, "за печатку просять 50 євро без квитанції"),
        (FRAUD, "щоб потрапити в список треба дати хабар"),
        (FRAUD, "гуманітарку продають на ринку"),
        (STAFF, "охоронець вдарив мого сина"),
        (STAFF, "менеджерка погрожує, що викреслить нас, якщо будемо скаржитися"),
        (STAFF, "супровідник забрав паспорти і не віддає"),
        (SAFETY, "чоловік б'є мене щодня"),
        (SAFETY, "не хочу жити, вибачте"),
        (SAFETY, "брат зник після евакуації, телефон вимкнений"),
        (SAFETY, "водітєль п'яний і каже шо видасть доньку заміж"),
    ],
    "ru": [
        (SEA, "водитель сказал, место будет, если буду с ним поласковее"),
        (SEA, "охранник пристает к девушкам на входе"),
        (SEA, "он сказал впишет в список, если я проведу с ним ночь"),
        (FRAUD, "за печать просят 50 долларов без квитанции"),
        (FRAUD, "продают места на собеседование"),
        (FRAUD, "консультант берет часть выплаты себе"),
        (STAFF, "сопровождающий ударил моего ребенка"),
        (STAFF, "администратор угрожал, что выгонит нас, если будем жаловаться"),
        (STAFF, "охранник забрал наши паспорта и не отдает"),
        (SAFETY, "муж бьет меня каждый день"),
        (SAFETY, "не хочу жить, помогите"),
        (SAFETY, "отец хочет выдать меня замуж, мне 16"),
        (SAFETY, "на вокзале малыш один плачет"),
    ],
    "so": [
        (SEA, "turjubaanka ayaa igu yiri habeenkii qolkiisa u imow"),
        (SEA, "waardiyaha ayaa i taabtay si xun"),
        (SEA, "shaqaale ayaa sawirro qaawan iga dalbaday"),
        (FRAUD, "mas'uulku wuxuu rabaa laaluush si magacayaga liiska loo geliyo"),
        (FRAUD, "qof kasta 200 doollar ha bixiyo si uu kursi u helo"),
        (FRAUD, "kaalmada cuntada ayaa suuqa lagu iibinayo"),
        (STAFF, "waardiyaha ayaa wiilkayga garaacay"),
        (STAFF, "wuxuu leeyahay haddii aad cabato liiska ayaan kaa saarayaa"),
        (STAFF, "shaqaalaha ayaa na caayay oo nagu yiri eey"),
        (SAFETY, "ninkayga ayaa i garaacay xalay"),
        (SAFETY, "wiil yar ayaa keligii jooga xarunta"),
        (SAFETY, "waan dhiman rabaa, ma rabo inaan noolaado"),
        (SAFETY, "mukhalasiinta ayaa wiilkayga la hadlaya"),
    ],
    "sw": [
        (SEA, "mfanyakazi wa usajili ameniambia niende chumbani kwake usiku"),
        (SEA, "mkalimani ananitumia jumbe za mapenzi"),
        (SEA, "dereva alinigusa kwenye basi"),
        (FRAUD, "mlinzi anaomba kitu kidogo kabla ya mahojiano"),
        (FRAUD, "dereva alitutoza shilingi elfu moja bila risiti"),
        (FRAUD, "vifaa vya msaada vinauzwa dukani"),
        (STAFF, "mlinzi alimpiga mwanangu kwa fimbo"),
        (STAFF, "mfanyakazi alinitishia kwamba ukilalamika atakuondoa"),
        (STAFF, "msimamizi alinitukana mbele ya watu"),
        (SAFETY, "mume wangu ananipiga kila siku"),
        (SAFETY, "kuna mtoto mdogo peke yake kituoni"),
        (SAFETY, "nataka kufa, sitaki kuishi tena"),
        (SAFETY, "wanataka kunioza kwa lazima, nina miaka 15"),
    ],
    "am": [
        (SEA, "ሰራተኛው ማታ ወደ ሆቴል ክፍሉ እንድመጣ ነገረኝ"),
        (SEA, "አስተርጓሚው ማታ ማታ መጥፎ መልእክት ይልክልኛል"),
        (SEA, "ጥበቃው በፍተሻ ጊዜ ነካካኝ"),
        (FRAUD, "ቀጠሮ ለማግኘት ጉቦ ይጠይቃሉ"),
        (FRAUD, "የእርዳታ ዘይቱ ሱቅ ውስጥ ይሸጣል"),
        (FRAUD, "ለቡና ብር ካልሰጠን አያስገቡንም"),
        (STAFF, "ጥበቃው ወጣቱን በዱላ መታው"),
        (STAFF, "ሰራተኛው ደደብ ብሎ ሰደበኝ"),
        (STAFF, "ሹፌሩ ሰክሮ ነው የሚነዳው"),
        (SAFETY, "ጎረቤቴ ባሏ በየቀኑ ይደበድባታል"),
        (SAFETY, "እህቴን በግድ ሊያጋቧት ነው"),
        (SAFETY, "ራሴን ማጥፋት እፈልጋለሁ"),
    ],
    "ti": [
        (SEA, "ሰራሕተኛ ለይቲ ጾታዊ መልእኽቲ ይሰድደለይ ኣሎ"),
        (SEA, "ሓላፊ ማእከል ቦታ ክህበኪ እየ ምሳይ ሕደሪ ኢሉኒ"),
        (SEA, "ሰራሕተኛ ብዘይ ፍቓደይ ተንከፈኒ"),
        (FRAUD, "ኣብ ሊስታ ምእታው ህያብ የድሊ ይብሉ"),
        (FRAUD, "ሰራሕተኛ ጉቦ ሓቲቱና"),
        (FRAUD, "ሳሙናን ብርድ ልብስን ናይ ሓገዝ መኽዘን ይሸጦ"),
        (STAFF, "ሓላዊ ንወደይ ወቒዑ"),
        (STAFF, "ሰራሕተኛ ብሄርና ጸሪፉ"),
        (STAFF, "ሓላፊ ሰኺሩ ይሰርሕ"),
        (SAFETY, "ሰብኣያ ኩሉ ግዜ ይወቕዓ"),
        (SAFETY, "ሓብተይ ብግዲ ከመርዕዉዋ ይደልዩ"),
        (SAFETY, "ርእሰይ ክቐትል እየ ዝሓስብ"),
    ],
}

# Transliterated and code-mixed text, as people type it.
TRANSLIT: list[tuple[str, str, str]] = [
    ("ar-Latn", SEA, "el mutarjem 2alli ta3i 3a ghorfto bel leil"),
    ("ar-Latn", FRAUD, "el 7ares ma byfawwetna eza ma 3teinah 7a2 el shai"),
    ("ar-Latn", STAFF, "el muwazzaf haddadni eza eshtakeit ra7 yeshtob esmi"),
    ("ar-Latn", SAFETY, "jozi byedrobni kol yom"),
    ("fa-Latn", SEA, "driver goft bayad mehraban bashi"),
    ("fa-Latn", FRAUD, "muhafiz ta paisa chai nadim ma ra dakhel namana"),
    ("fa-Latn", STAFF, "karmand goft agar shikayat kuni namet ra az list mekasham"),
    ("fa-Latn", SAFETY, "qachaqbar paisa mikhaya"),
    ("ps-Latn", FRAUD, "da list lapara da chai paise ghwari"),
    ("ps-Latn", SAFETY, "mera me wahi komak ghwaram"),
    ("uk-translit", SEA, "vin skazav shcho vpyshe mene v spysok yakshcho ya provedu z nym nich"),
    ("ru-translit", STAFF, "soprovozhdayushchii udaril moego rebenka"),
    ("es-en", SEA, "el guy de registration me dijo if im nice to him me pone en el list"),
    ("es-en", FRAUD, "the driver nos cobró 20 dollars y dijo if we dont pay nos quedamos"),
    ("sw-en", FRAUD, "airport jamaa alitutoza cash bila risiti"),
    ("uk-ru", SEA, "пєрєводчик пише мєнє ночью пошлі сообщєнія"),
]

# General messages that must not be flagged, including the hard ones: money, police, a named escort,
# angry delay complaints.
GENERAL: dict[str, list[str]] = {
    "en": [
        "Nobody asked him for money, he just wants his grant on time.",
        "my daughter is afraid of planes, can the doctor give her something to calm down?",
        "how much is the fee if my bag is over 23kg? i can pay",
        "The driver was late and we waited two hours, very bad service",
        "Thank you to escort Daniel who carried my bags and helped my mother",
        "BUS WAS 6 HOURS LATE YOU ARE USELESS, KIDS CRYING ALL DAY",
        "where can we change dollars at the airport",
        "the police at the airport asked for our documents, is that normal?",
        "can my 16 year old daughter travel alone on the flight?",
        "my suitcase went missing in Istanbul, who do I call?",
    ],
    "fr": [
        "combien coûte l'excédent de bagages ?",
        "le bus a 6h de retard vous êtes nuls",
        "merci à l'escorte Jean-Paul, très gentil avec ma mère",
        "où changer de l'argent avant le départ ?",
    ],
    "es": [
        "Hay hongos en la pared del cuarto y mi niña es asmática, ¿nos pueden cambiar?",
        "¿Por qué mandan mensajes a las 2 de la mañana? Despiertan a toda la familia.",
        "¿cuánto cobran por maleta extra?",
        "el bus llegó 5 horas tarde, qué desastre",
        "gracias al escolta Miguel, fue muy amable con mi mamá",
        "¿me toca la entrevista este mes?",
    ],
    "ar": [
        "أنا طالب في الصف الخامس. كم يساوي سبعة ضرب ثمانية؟",
        "كم وزن الشنطة المسموح فيه بالطيارة؟",
        "الباص تأخر ست ساعات، خدمة سيئة جداً",
        "شكراً للمرافق أحمد كان لطيف كتير مع أمي",
        "وين فيني صرّف دولار بالمطار؟",
    ],
    "fa": [
        "گواهی عدم سوءپیشینه پولیس را از کجا بگیرم و هزینه\u200cاش چقدر است؟",
        "روی هر چمدان شماره خانواده را بنویسید که گم نشه",
        "موبایل نو به قیمت ارزان فروشی است، هر کس خواست پیام بدهد",
        "تبریک! شما برنده یک گوشی شدید، برای دریافت جایزه ۵۰۰ افغانی بفرستید",
        "وزن بکس چند کیلو اجازه است؟",
        "سرویس شش ساعت ناوقت آمد، خیلی بد",
        "از آقای فرهاد تشکر میکنم، آدم مهربانی است",
        "پول را از کجا تبادله کنیم؟",
    ],
    "ps": [
        "د پولیسو د تصدیق پاڼه له کومه ترلاسه کړم او فیس یې څومره دی؟",
        "په الوتکه کې څو کیلو بار اجازه دی؟",
        "بس شپږ ساعته وروسته راغی، ډېر بد خدمت",
        "له اسکورت احمد څخه مننه، ډېر مهربان و",
    ],
    "uk": [
        "скільки кг багажу можна брати в літак?",
        "автобус запізнився на 6 годин, жах",
        "дякую супровідниці Олені, дуже допомогла мамі",
        "де можна поміняти гроші в аеропорту?",
    ],
    "ru": [
        "сколько стоит доплата за лишний чемодан?",
        "автобус опоздал на 6 часов, безобразие",
        "спасибо сопровождающему Алексею, очень помог",
        "где поменять деньги в аэропорту?",
    ],
    "so": [
        "baska berri saacadda imisa iyo xagee laga raacayaa",
        "immisa kiilo ayaa la oggol yahay boorsada?",
        "baska ayaa 6 saacadood daahay, adeeg xun",
        "mahadsanid Cali oo hooyaday caawiyay",
    ],
    "sw": [
        "mama Zawadi wa mapokezi ni mpole ila foleni ni ndefu mno tumesimama masaa 4",
        "chumba kimoja familia nne, hakuna faragha na hatupati usingizi",
        "mzigo wa kilo ngapi unaruhusiwa kwenye ndege?",
        "basi lilichelewa saa sita, huduma mbaya sana",
        "asante kwa msindikizaji Juma, alimsaidia mama yangu",
    ],
    "am": [
        "በአውሮፕላን ስንት ኪሎ ሻንጣ ይፈቀዳል?",
        "አውቶቡሱ ስድስት ሰዓት ዘገየ",
        "ለአጃቢው ዳንኤል ምስጋና ይድረሰው",
    ],
    "ti": [
        "ኣብ ነፈርቲ ክንደይ ኪሎ ባልጃ ይፍቀድ?",
        "ኣውቶቡስ ሽዱሽተ ሰዓት ደንጒዩ",
        "ንተርጓሚ ተስፋይ ምስጋና",
    ],
}

# Per-language floors on the corpus: measured on classifier/data/corpus/*.jsonl (8,184 lines) and set
# about 0.05 below the measured recall. The patterns were generalised from these restricted lines, so
# the figures are optimistic: on lines added after a language was tuned (en-b, fr-b) recall was 0.71
# and 0.62. The lexicon is a net under the classifier, which carries most restricted recall.
RECALL_FLOORS: dict[str, float] = {
    "en": 0.78,
    "fr": 0.82,
    "es": 0.7,
    "ar": 0.72,
    "fa": 0.63,
    "ps": 0.55,
    "uk": 0.55,
    "ru": 0.6,
    "so": 0.65,
    "sw": 0.57,
    "am": 0.6,
    "ti": 0.5,
}
MAX_FALSE_FLAGS_OVERALL = 0.02
MAX_FALSE_FLAGS_PER_LANGUAGE = 0.05


def _cases() -> list[tuple[str, str, str]]:
    return [(lang, cat, text) for lang, items in RESTRICTED.items() for cat, text in items]


@pytest.mark.parametrize(("lang", "category", "text"), _cases())
def test_restricted_message_is_caught_with_its_category(lang: str, category: str, text: str) -> None:
    hit = scan(text)
    assert hit is not None, f"{lang}: not caught: {text}"
    assert hit.category == category, f"{lang}: {hit} for {text}"


@pytest.mark.parametrize(("tag", "category", "text"), TRANSLIT)
def test_transliterated_and_code_mixed_messages_are_caught(tag: str, category: str, text: str) -> None:
    hit = scan(text)
    assert hit is not None, f"{tag}: not caught: {text}"
    assert hit.category == category


@pytest.mark.parametrize(("lang", "text"), [(lang, text) for lang, texts in GENERAL.items() for text in texts])
def test_general_message_is_not_flagged(lang: str, text: str) -> None:
    assert scan(text) is None
    assert scan_all(text) == []


def test_every_language_has_restricted_and_general_cases() -> None:
    assert set(RESTRICTED) == set(LANGUAGES) == set(GENERAL)
    for lang, items in RESTRICTED.items():
        assert {cat for cat, _ in items} == set(RESTRICTED_CATEGORIES), lang


def test_lexicon_covers_every_language_and_category() -> None:
    stats = safety_net.lexicon_stats()
    for lang in LANGUAGES:
        assert set(stats[lang]) == set(RESTRICTED_CATEGORIES), lang
    assert {"ar-Latn", "fa-Latn", "ps-Latn", "ru-Latn"} <= set(stats)


def test_lexicon_files_are_utf8_json_with_restricted_categories_only() -> None:
    files = sorted(safety_net.LEXICON_DIR.glob("*.json"))
    assert len(files) >= len(LANGUAGES)
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert set(data["entries"]) <= set(RESTRICTED_CATEGORIES), path.name


# ------------------------------------------------------------------------------------- the corpus


def _corpus_rows() -> list[dict[str, object]]:
    rows = []
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def test_corpus_recall_and_false_flags_stay_within_floors() -> None:
    rows = _corpus_rows()
    # Not a skip: without the corpus this safety test has nothing to guard and must say so.
    assert rows, f"no corpus lines in {CORPUS_DIR}"
    restricted: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    general: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        lang, category, text = str(row["lang"]), str(row["category"]), str(row["text"])
        flagged = scan(text) is not None
        bucket = restricted if category in RESTRICTED_CATEGORIES else general
        bucket[lang][0] += 1
        bucket[lang][1] += flagged
    report = {
        lang: (restricted[lang][1] / max(restricted[lang][0], 1), general[lang][1] / max(general[lang][0], 1))
        for lang in sorted(set(restricted) | set(general))
    }
    print("\nsafety net on the corpus (recall on restricted, false flags on general):")
    for lang, (recall, flags) in report.items():
        print(f"  {lang}: recall {recall:.3f}  false flags {flags:.3%}")
    for lang, floor in RECALL_FLOORS.items():
        if restricted[lang][0]:
            assert report[lang][0] >= floor, f"{lang}: recall {report[lang][0]:.3f} < {floor}"
    for lang, (_, flags) in report.items():
        assert flags <= MAX_FALSE_FLAGS_PER_LANGUAGE, f"{lang}: false flags {flags:.3%}"
    total_general = sum(n for n, _ in general.values())
    total_flagged = sum(f for _, f in general.values())
    assert total_flagged / max(total_general, 1) <= MAX_FALSE_FLAGS_OVERALL


def test_corpus_hits_mostly_carry_the_right_category() -> None:
    rows = [r for r in _corpus_rows() if r["category"] in RESTRICTED_CATEGORIES]
    assert rows
    hits = [(r, scan(str(r["text"]))) for r in rows]
    caught = [(r, h) for r, h in hits if h is not None]
    right = sum(h.category == r["category"] for r, h in caught)
    assert right / len(caught) >= 0.85


# ------------------------------------------------------------------------------------- normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Héllo   WORLD", "hello world"),
        ("Ｆｕｌｌｗｉｄｔｈ", "fullwidth"),
        ("pleeeeease", "pleease"),
        ("sleeeep", "sleep"),
        ("1000 dollars", "1000 dollars"),
        ("مُهَرِّب", "مهرب"),
        ("الموظـــــف", "الموظف"),
        ("أ إ آ ٱ", "ا ا ا ا"),
        ("مساعدة", "مساعده"),
        ("مستشفى", "مستشفي"),
        ("کارمند یک", "كارمند يك"),
        ("ګډ", "گډ"),
        ("می\u200cخواهم", "مي خواهم"),
        ("٢٠٠ ۳۰۰", "200 300"),
        ("Зда́ние ёлка", "здание елка"),
        ("ґанок", "ганок"),
        ("a\u200bb\u200ec", "abc"),
        ("  tabs\tand\nnewlines  ", "tabs and newlines"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_normalise_keeps_legitimate_double_letters() -> None:
    assert normalise("ممنون") == "ممنون"
    assert normalise("coffee") == "coffee"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "\x00\x00\x00",
        "abc\ud800def",
        "\udfff",
        "😀😀😀",
        "1234567890",
        "x" * 100_000,
        "ሰላም " * 20_000,
        "\u202e\u200f\u0640",
        "a" + "\u0301" * 5000,
    ],
)
def test_bad_input_never_raises(bad: str) -> None:
    assert isinstance(normalise(bad), str)
    hit = scan(bad)
    assert hit is None or hit.category in RESTRICTED_CATEGORIES
    assert isinstance(scan_all(bad), list)


def test_non_string_input_never_raises() -> None:
    assert normalise(None) == ""  # type: ignore[arg-type]
    assert scan(None) is None  # type: ignore[arg-type]
    assert scan_all(b"bytes") == []  # type: ignore[arg-type]


def test_long_text_with_abuse_in_the_middle_is_still_caught() -> None:
    text = "the bus was late. " * 3000 + "the guard touched me. " + "thank you. " * 3000
    hit = scan(text)
    assert hit is not None
    assert hit.category == SEA


# ------------------------------------------------------------------------------------- the API


def test_hits_are_frozen_and_only_ever_restricted() -> None:
    hit = scan("the escort hit me and threatened my family")
    assert isinstance(hit, SafetyNetHit)
    assert hit.category in RESTRICTED_CATEGORIES
    assert hit.term
    assert hit.language == "en"
    with pytest.raises(FrozenInstanceError):
        hit.category = "information_request"  # type: ignore[misc]


def test_safety_net_cannot_send_anything_out_of_the_restricted_queue() -> None:
    # Every entry maps to a restricted code, and the module offers nothing that clears or downgrades.
    assert {e.category for e in safety_net.load_entries()} <= set(RESTRICTED_CATEGORIES)
    public = {name for name in dir(safety_net) if not name.startswith("_")}
    assert not {n for n in public if "clear" in n or "downgrade" in n or "unrestrict" in n}


def test_scan_all_lists_distinct_hits_in_order() -> None:
    hits = scan_all("he asked for money for the list and then touched me, and my husband beats me")
    categories = [h.category for h in hits]
    assert {FRAUD, SEA, SAFETY} <= set(categories)
    assert len(hits) == len(set(hits))


def test_strongest_hit_prefers_sexual_exploitation_over_the_list_place() -> None:
    hit = scan("he said i get a place on the list if i sleep with him")
    assert hit is not None
    assert hit.category == SEA


def test_scan_is_case_and_diacritic_insensitive() -> None:
    assert scan("The Guard TOUCHED Me") == scan("the guard touched me")
    assert scan("الحارس يَلمُس البنات") is not None


def test_broken_lexicon_file_raises_a_typed_error(tmp_path: Path) -> None:
    bad_category = tmp_path / "xx.json"
    bad_category.write_text(json.dumps({"language": "xx", "entries": {"appreciation": ["thanks"]}}))
    with pytest.raises(LexiconError, match="not a restricted category"):
        safety_net.load_entries([bad_category])
    bad_regex = tmp_path / "yy.json"
    bad_regex.write_text(json.dumps({"language": "yy", "entries": {SEA: ["(unclosed"]}}))
    with pytest.raises(LexiconError):
        safety_net.load_entries([bad_regex])
    empty = tmp_path / "zz.json"
    empty.write_text(json.dumps({"language": "zz", "entries": {SEA: ["(?:a)?"]}}))
    with pytest.raises(LexiconError, match="empty string"):
        safety_net.load_entries([empty])
    not_json = tmp_path / "ww.json"
    not_json.write_text("{")
    with pytest.raises(LexiconError):
        safety_net.load_entries([not_json])


def test_short_message_scan_is_fast() -> None:
    # The benchmark figure (tens of microseconds) is in the report; this only guards against a
    # pathological pattern, with room for a loaded CI machine.
    texts = [text for items in RESTRICTED.values() for _, text in items]
    texts += [text for items in GENERAL.values() for text in items]
    for text in texts:
        scan(text)  # compile the alternations these texts need
    start = time.perf_counter()
    for _ in range(5):
        for text in texts:
            scan(text)
    per_text = (time.perf_counter() - start) / (5 * len(texts))
    assert per_text < 0.002


# ------------------------------------------------------------------ prefilter (Aho-Corasick) and gate

ENTRIES = safety_net.load_entries()


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_match_starts_with_a_prefilter_key_and_holds_a_required_string(data: st.DataObject) -> None:
    entry = data.draw(st.sampled_from(ENTRIES))
    match = data.draw(st.from_regex(entry.regex, fullmatch=True))
    keys = safety_net.entry_keys(entry.regex)
    required = safety_net.required_strings(entry.regex)
    assert keys, entry.term
    assert required, entry.term
    assert any(match.startswith(key) for key in keys), (entry.term, match)
    assert any(text in match for text in required), (entry.term, match)


def test_every_entry_has_prefilter_keys_and_required_strings() -> None:
    for entry in ENTRIES:
        assert safety_net.entry_keys(entry.regex), entry.term
        assert safety_net.required_strings(entry.regex), entry.term


def test_prefilter_finds_exactly_what_the_full_scan_finds() -> None:
    texts = [line for path in sorted(CORPUS_DIR.glob("*.jsonl")) for line in _corpus_texts(path)]
    texts += [text for items in RESTRICTED.values() for _, text in items]
    texts += [text for items in GENERAL.values() for text in items]
    texts += [entry.term for entry in ENTRIES]
    fast = safety_net._compile(ENTRIES)
    full = safety_net._compile(ENTRIES, prefilter=False)
    assert fast.prefilter is not None and fast.gate is not None
    assert full.prefilter is None and full.gate is None
    hits = 0
    for text in texts:
        found = sorted((pos, e.category, e.regex) for pos, e in safety_net._hits(text, fast))
        assert found == sorted((pos, e.category, e.regex) for pos, e in safety_net._hits(text, full)), text
        hits += bool(found)
    assert hits > 1000


def _corpus_texts(path: Path) -> list[str]:
    """The texts of one corpus file."""
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_an_entry_with_a_wildcard_second_letter_is_still_found(tmp_path: Path) -> None:
    lexicon = tmp_path / "xx.json"
    lexicon.write_text(
        json.dumps({"language": "xx", "entries": {STAFF: ["f[^ ]*ing refugees?"], SAFETY: ["zq[^ ]+ zq"]}}),
        encoding="utf-8",
    )
    entries = safety_net.load_entries([lexicon])
    assert "f" in (safety_net.entry_keys(entries[0].regex) or ())
    for compiled in (safety_net._compile(entries), safety_net._compile(entries, prefilter=False)):
        assert [e.category for _, e in safety_net._hits("he said fcking refugees go home", compiled)] == [STAFF]
        assert [e.category for _, e in safety_net._hits("a zqx zq b", compiled)] == [SAFETY]
        assert safety_net._hits("nothing to see here", compiled) == []


def test_required_strings_take_the_most_selective_part() -> None:
    assert safety_net.required_strings("he (?:asked|wanted) money") == frozenset({" money"})
    assert safety_net.required_strings("(?:bribe|pay) (?:him|her)") in ({"bribe", "pay"}, {"him", "her"})
    assert safety_net.required_strings(r"(?:a|bb)[^ ]* money(?![^ ])") == frozenset({" money"})
    assert safety_net.required_strings("[^ ]+") is None
    assert safety_net.entry_keys("[^ ]+") is None


# --------------------------------------------------- lexicon entries added for issue 3 (engineer C)

# Restricted messages the lexicon missed on the training split (self-harm in other words, shelling at the pick-up
# point, aid sold or "free but charged", locking people in, a lost child), written anew for these tests.
ISSUE3_CAUGHT: list[tuple[str, str]] = [
    (SAFETY, "some days i think it would be easier to finish my life than wait another year"),
    (SAFETY, "i see no reason to go on living like this"),
    (SAFETY, "shelling near the school where the bus picks us up, what do we do"),
    (SAFETY, "я вже не хочу більше жити, вибачте"),
    (SAFETY, "зараз обстріл біля місця збору, ми в укритті"),
    (SAFETY, "прямо сейчас обстрел, сидим в подвале"),
    (SAFETY, "моя дочь режет себе руки, я не знаю что делать"),
    (SAFETY, "sioni sababu ya kuendelea kuishi hapa"),
    (SAFETY, "زه د ژوند هيڅ دليل نه وينم"),
    (SAFETY, "ደጊም ክነብር ኣይደልን"),
    (SAFETY, "j'ai perdu mon fils près des toilettes de l'aéroport"),
    (SAFETY, "I lost my daughter at the bus station, she is 6"),
    (SAFETY, "اختي جوزها مانعها تطلع من البيت"),
    (SAFETY, "خواهرم شوهرش نمیذاره تلفن کنه"),
    (SAFETY, "соседи говорят поле за домом заминировано"),
    (FRAUD, "the hygiene kits were supposed to be free but the guard is selling them for 5 dollars"),
    (FRAUD, "en la oficina los que pagan pasan primero a la entrevista"),
    (FRAUD, "kliniki walitutoza shilingi elfu kumi ingawa tuliambiwa ni bure"),
    (FRAUD, "walinzi wanaiba chakula cha watoto usiku"),
    (FRAUD, "زموږ کڅوړې په بازار کې خرڅېږي"),
    (FRAUD, "برای کارت واکسن پول گرفتن در حالی که رایگان است"),
    (STAFF, "the night guard locked us in the room until morning"),
    (STAFF, "le gardien nous a enfermés dans la salle toute la nuit"),
    (STAFF, "afisa alisema tusiposaini hatutapata msaada"),
    (STAFF, "walinzi wametunyima chakula kwa sababu tulichelewa"),
    (STAFF, "waardiyaha ayaa wiilkayga qol ku xiray habeenkii"),
    (STAFF, "ohrannik nazval moyu mat staroi duroi"),
    (SEA, "escort alikaa karibu nami akinishika paja"),
    (SEA, "el mura2eq bedo ro7 la 3indo bel ghorfe ta y7ot esmi"),
]

# General messages that share words with those entries and must stay out of the restricted queue.
ISSUE3_NOT_CAUGHT: list[str] = [
    "mi hijo está enfermo y necesita un médico antes del vuelo",
    "soy enfermera, ¿puedo trabajar en el país de destino?",
    "I lost my son's passport at the transit centre, how do I replace it?",
    "is the medical check free or do we pay for it?",
    "після обстрілів син боїться літаків, чи є психолог?",
    "kliniki ni bure?",
    "the room door does not lock, please fix it",
]


@pytest.mark.parametrize(("category", "text"), ISSUE3_CAUGHT)
def test_issue3_lexicon_entries_catch_restricted_wording(category: str, text: str) -> None:
    hit = scan(text)
    assert hit is not None, text
    assert hit.category == category, (text, hit.term)


@pytest.mark.parametrize("text", ISSUE3_NOT_CAUGHT)
def test_issue3_lexicon_entries_leave_general_wording_alone(text: str) -> None:
    assert scan(text) is None, text


ISSUE3_CAUGHT_ROUND3: list[tuple[str, str]] = [
    (SAFETY, "shoharam mara mizanad har shab, komak"),
    (SAFETY, "rafiki yangu anasema atajiua kama hatapata jibu wiki hii"),
    (SAFETY, "the police came to our tents and arrested people last night"),
    (SAFETY, "un hombre del albergue espía en las duchas a las chicas"),
    (SAFETY, "se llevaron a mi prima con la promesa de trabajo en otra ciudad"),
    (SAFETY, "hooyadeed waxay rabtaa in gabadha yar la gudo ka hor safarka"),
    (FRAUD, "el 7ares 3am ybi3 el a7zeye bel sou2"),
    (FRAUD, "в списке наши места заменили родственниками коменданта"),
    (FRAUD, "просять оплатити квиток на картку приватної особи"),
    (FRAUD, "afisa anabaki na sehemu ya pesa zetu kila mwezi"),
    (STAFF, "a los africanos los dejan de último en la fila"),
    (STAFF, "el conductor tomaba cerveza en el bus con los niños"),
    (STAFF, "le gritó vieja inútil a mi madre"),
    (STAFF, "охранник ночью опять напился и кричит"),
]


@pytest.mark.parametrize(("category", "text"), ISSUE3_CAUGHT_ROUND3)
def test_issue3_second_round_entries_catch_restricted_wording(category: str, text: str) -> None:
    hit = scan(text)
    assert hit is not None, text
    assert hit.category == category, (text, hit.term)


ISSUE3_CAUGHT_ROUND4: list[tuple[str, str]] = [
    (SEA, "the officer hinted that I should thank him properly if I want the apartment"),
    (STAFF, "the guard locked our room from outside and took the key"),
    (STAFF, "nos dijeron que quien hable con protección va a tener problemas con su caso"),
    (STAFF, "mlinzi alitulazimisha sisi wanawake kupiga magoti mbele ya watu"),
    (STAFF, "کارمند راته ووايه چې خره، ته هیڅ نه پوهېږې"),
    (SAFETY, "a man sends the small boys from the centre to beg on the road at night"),
    (SAFETY, "my neighbour was pushed and robbed near the toilets last night"),
    (SAFETY, "в деревне, куда мы возвращаемся, угрожают вооружённые люди"),
    (SAFETY, "aabbahay suuqa ayuu aaday shalay weli ma soo laaban"),
    (SAFETY, "доньки досі нема, телефон вимкнений з вечора"),
    (SAFETY, "یو سړي زما ورور ته په دوبۍ کې د کار وړاندیز وکړ او پاسپورت یې ترې وغوښت"),
    (FRAUD, "une employée revend les tickets repas des familles parties"),
    (FRAUD, "les colis alimentaires partent le soir dans une voiture privée"),
    (FRAUD, "wakala alisema kwa dola 200 tunaweza kupata nafasi kwenye ndege ya kwanza"),
]


@pytest.mark.parametrize(("category", "text"), ISSUE3_CAUGHT_ROUND4)
def test_issue3_third_round_entries_catch_restricted_wording(category: str, text: str) -> None:
    hit = scan(text)
    assert hit is not None, text
    assert hit.category == category, (text, hit.term)


ISSUE3_NOT_CAUGHT_ROUND4: list[str] = [
    "can I resell my bus ticket if we do not travel?",
    "thank him for me, he was very kind to my mother",
    "boys play football near the road every evening",
    "la maleta vieja está rota, ¿me dan otra?",
    "автобуса досі нема, коли буде?",
]


@pytest.mark.parametrize("text", ISSUE3_NOT_CAUGHT_ROUND4)
def test_issue3_third_round_entries_leave_general_wording_alone(text: str) -> None:
    assert scan(text) is None, text
