"""The words of the phrase grammar (:mod:`rnnkit.data.phrase_grammar`): nouns with gender and plurals, adjectives
with their four French forms, subjects, verbs with their six French present forms and past participles, and
the small closed lists (degrees, numbers, days, times, places, object pronouns).

The phrase book's vocabulary is all here, and more of the same kinds, so the grammar can say the phrase book's
sentences' neighbours without saying them.
"""
from __future__ import annotations

from dataclasses import dataclass

@dataclass(frozen=True)
class Noun:
    en: str
    fr: str
    gender: str                  # "m" or "f"
    en_pl: str = ""              # "" = en + "s"
    fr_pl: str = ""              # "" = fr + "s"

    @property
    def plural_en(self) -> str:
        return self.en_pl or self.en + "s"

    @property
    def plural_fr(self) -> str:
        return self.fr_pl or self.fr + "s"


def _nouns(spec: str) -> list[Noun]:
    """``en|fr|gender[|en plural|fr plural]`` per line."""
    out = []
    for line in spec.strip().splitlines():
        cols = [c.strip() for c in line.split("|")]
        out.append(Noun(*cols))
    return out


THINGS = _nouns("""
book|livre|m
car|voiture|f
house|maison|f
room|chambre|f
table|table|f
chair|chaise|f
door|porte|f
window|fenêtre|f
bag|sac|m
key|clé|f
phone|téléphone|m
pen|stylo|m
letter|lettre|f
map|carte|f
ticket|billet|m
newspaper|journal|m||journaux
film|film|m
bike|vélo|m
computer|ordinateur|m
umbrella|parapluie|m
wallet|portefeuille|m
watch|montre|f
dress|robe|f|dresses
shirt|chemise|f
hat|chapeau|m||chapeaux
picture|photo|f
garden|jardin|m
city|ville|f|cities
television|télévision|f
radio|radio|f
idea|idée|f
question|question|f
problem|problème|m
job|travail|m||travaux
gift|cadeau|m||cadeaux
""")
FOOD = _nouns("""
coffee|café|m
tea|thé|m
water|eau|f
bread|pain|m
cheese|fromage|m
apple|pomme|f
cake|gâteau|m||gâteaux
soup|soupe|f
wine|vin|m
beer|bière|f
milk|lait|m
fish|poisson|m|fish
chocolate|chocolat|m
sandwich|sandwich|m|sandwiches
orange|orange|f
egg|œuf|m
meat|viande|f
food|nourriture|f
salad|salade|f
""")
ANIMALS = _nouns("""
dog|chien|m
cat|chat|m
bird|oiseau|m||oiseaux
horse|cheval|m||chevaux
fish|poisson|m|fish
rabbit|lapin|m
""")
PEOPLE = _nouns("""
brother|frère|m
sister|sœur|f
father|père|m
mother|mère|f
son|fils|m||fils
daughter|fille|f
friend|ami|m
husband|mari|m
wife|femme|f|wives
uncle|oncle|m
aunt|tante|f
teacher|professeur|m
doctor|médecin|m
neighbour|voisin|m
boy|garçon|m
girl|fille|f
baby|bébé|m|babies
child|enfant|m|children
""")
PLACES = _nouns("""
station|gare|f
hotel|hôtel|m
bank|banque|f
museum|musée|m
hospital|hôpital|m||hôpitaux
market|marché|m
park|parc|m
beach|plage|f
cinema|cinéma|m
restaurant|restaurant|m
school|école|f
airport|aéroport|m
library|bibliothèque|f|libraries
church|église|f|churches
shop|magasin|m
office|bureau|m||bureaux
pharmacy|pharmacie|f|pharmacies
post office|poste|f
swimming pool|piscine|f
supermarket|supermarché|m
""")
BODY = _nouns("""
head|tête|f
back|dos|m
arm|bras|m
leg|jambe|f
foot|pied|m|feet
hand|main|f
stomach|ventre|m
throat|gorge|f
ear|oreille|f
knee|genou|m
""")


@dataclass(frozen=True)
class Adj:
    en: str
    m: str
    f: str = ""                  # "" = m + "e"
    mpl: str = ""                # "" = m + "s"
    fpl: str = ""                # "" = f + "s"
    before: bool = False         # placed before the noun (grand, petit, bon, beau...)

    def fr(self, gender: str, plural: bool = False) -> str:
        f = self.f or (self.m if self.m.endswith("e") else self.m + "e")
        if not plural:
            return self.m if gender == "m" else f
        if gender == "m":
            return self.mpl or (self.m if self.m[-1] in "sx" else self.m + "s")
        return self.fpl or f + "s"


THING_ADJ = [Adj("big", "grand", before=True), Adj("small", "petit", before=True),
             Adj("new", "nouveau", "nouvelle", "nouveaux", before=True), Adj("old", "vieux", "vieille", "vieux",
                                                                            before=True),
             Adj("beautiful", "beau", "belle", "beaux", before=True), Adj("good", "bon", "bonne", before=True),
             Adj("bad", "mauvais", before=True), Adj("red", "rouge"), Adj("blue", "bleu"), Adj("green", "vert"),
             Adj("black", "noir"), Adj("white", "blanc", "blanche"), Adj("expensive", "cher", "chère"),
             Adj("heavy", "lourd"), Adj("clean", "propre"), Adj("dirty", "sale"), Adj("open", "ouvert"),
             Adj("closed", "fermé"), Adj("full", "complet", "complète"), Adj("empty", "vide"),
             Adj("interesting", "intéressant"), Adj("boring", "ennuyeux", "ennuyeuse"),
             Adj("comfortable", "confortable"), Adj("modern", "moderne")]
FOOD_ADJ = [Adj("hot", "chaud"), Adj("cold", "froid"), Adj("good", "bon", "bonne", before=True),
            Adj("delicious", "délicieux", "délicieuse", "délicieux"), Adj("fresh", "frais", "fraîche", "frais"),
            Adj("sweet", "sucré"), Adj("expensive", "cher", "chère"), Adj("cheap", "bon marché", "bon marché",
                                                                            "bon marché", "bon marché")]
PERSON_ADJ = [Adj("tired", "fatigué"), Adj("happy", "heureux", "heureuse", "heureux"), Adj("sad", "triste"),
              Adj("sick", "malade"), Adj("ready", "prêt"), Adj("busy", "occupé"), Adj("lost", "perdu"),
              Adj("young", "jeune"), Adj("tall", "grand"), Adj("small", "petit"), Adj("strong", "fort"),
              Adj("angry", "fâché"), Adj("sure", "sûr"), Adj("nice", "gentil", "gentille"),
              Adj("French", "français", "française", "français"), Adj("English", "anglais", "anglaise", "anglais"),
              Adj("married", "marié"), Adj("free", "libre"), Adj("late", "en retard", "en retard", "en retard",
                                                                     "en retard"),
              Adj("funny", "drôle"), Adj("beautiful", "beau", "belle", "beaux"), Adj("rich", "riche"),
              Adj("poor", "pauvre"), Adj("calm", "calme")]
IT_ADJ = [("easy", "facile"), ("difficult", "difficile"), ("important", "important"), ("possible", "possible"),
          ("impossible", "impossible"), ("expensive", "cher"), ("cheap", "bon marché"), ("good", "bon"),
          ("beautiful", "beau"), ("true", "vrai"), ("far", "loin"), ("normal", "normal"), ("simple", "simple"),
          ("strange", "bizarre"), ("funny", "drôle"), ("perfect", "parfait"), ("interesting", "intéressant"),
          ("dangerous", "dangereux"), ("free", "gratuit"), ("open", "ouvert"), ("closed", "fermé"),
          ("new", "nouveau"), ("normal", "normal"), ("ready", "prêt"), ("delicious", "délicieux")]
#: "I am hungry" = "J'ai faim": states French says with avoir
AVOIR_STATES = [("hungry", "faim"), ("thirsty", "soif"), ("cold", "froid"), ("hot", "chaud"), ("afraid", "peur"),
                ("sleepy", "sommeil")]
WEATHER = [("hot", "chaud"), ("cold", "froid"), ("nice", "beau"), ("warm", "bon"), ("cool", "frais")]
DEGREE = [("", ""), ("very ", "très "), ("too ", "trop "), ("quite ", "assez "), ("so ", "si ")]
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
NOMBRES = ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze"]
DAYS = [("Monday", "lundi"), ("Tuesday", "mardi"), ("Wednesday", "mercredi"), ("Thursday", "jeudi"),
        ("Friday", "vendredi"), ("Saturday", "samedi"), ("Sunday", "dimanche")]
TIMES = [("today", "aujourd'hui"), ("yesterday", "hier"), ("tomorrow", "demain"), ("now", "maintenant"),
         ("tonight", "ce soir"), ("this morning", "ce matin"), ("every day", "tous les jours")]
PAST_TIMES = [("yesterday", "hier"), ("this morning", "ce matin"), ("last night", "hier soir"),
              ("last week", "la semaine dernière")]
LOCATIONS = [("here", "ici"), ("there", "là"), ("at home", "à la maison"), ("at work", "au travail"),
             ("at school", "à l'école"), ("in the garden", "dans le jardin"), ("in the kitchen", "dans la cuisine"),
             ("in Paris", "à Paris"), ("in London", "à Londres"), ("in the car", "dans la voiture")]


@dataclass(frozen=True)
class Subject:
    en: str
    fr: str
    person: int                  # 0 je, 1 tu, 2 il/elle, 3 nous, 4 vous, 5 ils/elles
    gender: str
    plural: bool

    @property
    def third(self) -> bool:
        return self.person == 2


PRONOUNS = [Subject("I", "je", 0, "m", False), Subject("you", "tu", 1, "m", False),
            Subject("he", "il", 2, "m", False), Subject("she", "elle", 2, "f", False),
            Subject("we", "nous", 3, "m", True), Subject("they", "ils", 5, "m", True)]
BE_EN = {0: "am", 1: "are", 2: "is", 3: "are", 4: "are", 5: "are"}
ETRE = ["suis", "es", "est", "sommes", "êtes", "sont"]
AVOIR = ["ai", "as", "a", "avons", "avez", "ont"]
ALLER = ["vais", "vas", "va", "allons", "allez", "vont"]
CONTRACTED = {"I am": "I'm", "you are": "you're", "he is": "he's", "she is": "she's", "we are": "we're",
              "they are": "they're", "it is": "it's", "is not": "isn't", "are not": "aren't",
              "do not": "don't", "does not": "doesn't"}


@dataclass(frozen=True)
class Verb:
    """An English verb (base, 3rd singular, -ing, past participle) and its French present (6 persons), past
    participle and auxiliary."""
    en: str
    en3: str
    ing: str
    en_past: str
    fr: tuple
    fr_pp: str
    fr_inf: str


def _verb(en: str, en3: str, ing: str, past: str, fr: str, pp: str, inf: str) -> Verb:
    return Verb(en, en3, ing, past, tuple(fr.split()), pp, inf)


TRANSITIVE = [
    _verb("read", "reads", "reading", "read", "lis lis lit lisons lisez lisent", "lu", "lire"),
    _verb("watch", "watches", "watching", "watched", "regarde regardes regarde regardons regardez regardent",
          "regardé", "regarder"),
    _verb("eat", "eats", "eating", "ate", "mange manges mange mangeons mangez mangent", "mangé", "manger"),
    _verb("see", "sees", "seeing", "saw", "vois vois voit voyons voyez voient", "vu", "voir"),
    _verb("write", "writes", "writing", "wrote", "écris écris écrit écrivons écrivez écrivent", "écrit", "écrire"),
    _verb("buy", "buys", "buying", "bought", "achète achètes achète achetons achetez achètent", "acheté", "acheter"),
    _verb("take", "takes", "taking", "took", "prends prends prend prenons prenez prennent", "pris", "prendre"),
    _verb("find", "finds", "finding", "found", "trouve trouves trouve trouvons trouvez trouvent", "trouvé",
          "trouver"),
    _verb("lose", "loses", "losing", "lost", "perds perds perd perdons perdez perdent", "perdu", "perdre"),
    _verb("open", "opens", "opening", "opened", "ouvre ouvres ouvre ouvrons ouvrez ouvrent", "ouvert", "ouvrir"),
    _verb("close", "closes", "closing", "closed", "ferme fermes ferme fermons fermez ferment", "fermé", "fermer"),
    _verb("wash", "washes", "washing", "washed", "lave laves lave lavons lavez lavent", "lavé", "laver"),
    _verb("sell", "sells", "selling", "sold", "vends vends vend vendons vendez vendent", "vendu", "vendre"),
    _verb("look for", "looks for", "looking for", "looked for",
          "cherche cherches cherche cherchons cherchez cherchent", "cherché", "chercher"),
]
FOOD_VERBS = [TRANSITIVE[2],
              _verb("drink", "drinks", "drinking", "drank", "bois bois boit buvons buvez boivent", "bu", "boire"),
              _verb("cook", "cooks", "cooking", "cooked", "prépare prépares prépare préparons préparez préparent",
                    "préparé", "préparer")]
INTRANSITIVE = [
    _verb("sleep", "sleeps", "sleeping", "slept", "dors dors dort dormons dormez dorment", "dormi", "dormir"),
    _verb("work", "works", "working", "worked", "travaille travailles travaille travaillons travaillez travaillent",
          "travaillé", "travailler"),
    _verb("run", "runs", "running", "ran", "cours cours court courons courez courent", "couru", "courir"),
    _verb("sing", "sings", "singing", "sang", "chante chantes chante chantons chantez chantent", "chanté",
          "chanter"),
    _verb("dance", "dances", "dancing", "danced", "danse danses danse dansons dansez dansent", "dansé", "danser"),
    _verb("swim", "swims", "swimming", "swam", "nage nages nage nageons nagez nagent", "nagé", "nager"),
    _verb("play", "plays", "playing", "played", "joue joues joue jouons jouez jouent", "joué", "jouer"),
    _verb("cook", "cooks", "cooking", "cooked", "cuisine cuisines cuisine cuisinons cuisinez cuisinent",
          "cuisiné", "cuisiner"),
    _verb("eat", "eats", "eating", "ate", "mange manges mange mangeons mangez mangent", "mangé", "manger"),
    _verb("read", "reads", "reading", "read", "lis lis lit lisons lisez lisent", "lu", "lire"),
    _verb("study", "studies", "studying", "studied", "étudie étudies étudie étudions étudiez étudient", "étudié",
          "étudier"),
    _verb("wait", "waits", "waiting", "waited", "attends attends attend attendons attendez attendent", "attendu",
          "attendre"),
    _verb("laugh", "laughs", "laughing", "laughed", "ris ris rit rions riez rient", "ri", "rire"),
    _verb("cry", "cries", "crying", "cried", "pleure pleures pleure pleurons pleurez pleurent", "pleuré", "pleurer"),
]
MANNER = [("", ""), (" fast", " vite"), (" well", " bien"), (" a lot", " beaucoup"), (" slowly", " lentement"),
          (" badly", " mal")]
#: verbs taking a person as object: (English, French infinitive, French present (6), pronoun form)
PERSON_VERBS = [
    _verb("help", "helps", "helping", "helped", "aide aides aide aidons aidez aident", "aidé", "aider"),
    _verb("call", "calls", "calling", "called", "appelle appelles appelle appelons appelez appellent", "appelé",
          "appeler"),
    _verb("see", "sees", "seeing", "saw", "vois vois voit voyons voyez voient", "vu", "voir"),
    _verb("understand", "understands", "understanding", "understood",
          "comprends comprends comprend comprenons comprenez comprennent", "compris", "comprendre"),
    _verb("hear", "hears", "hearing", "heard", "entends entends entend entendons entendez entendent", "entendu",
          "entendre"),
    _verb("believe", "believes", "believing", "believed", "crois crois croit croyons croyez croient", "cru",
          "croire"),
    _verb("love", "loves", "loving", "loved", "aime aimes aime aimons aimez aiment", "aimé", "aimer"),
    _verb("wait for", "waits for", "waiting for", "waited for",
          "attends attends attend attendons attendez attendent", "attendu", "attendre"),
    _verb("know", "knows", "knowing", "known", "connais connais connaît connaissons connaissez connaissent",
          "connu", "connaître"),
]
#: object pronouns: English, French clitic (before the verb), French stressed (after a preposition)
OBJECTS = [("me", "me", "moi"), ("you", "te", "toi"), ("him", "le", "lui"), ("her", "la", "elle"),
           ("us", "nous", "nous"), ("them", "les", "eux")]

#: the object pronoun a subject cannot take without a reflexive ("I see me")
OWN_OBJECT = {"I": "me", "you": "you", "he": "him", "she": "her", "we": "us", "they": "them"}
VOWEL = "aeiouyhàâéèêëîïôûœ"
