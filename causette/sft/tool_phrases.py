"""The French phrasings of the tool-use conversations (causette/sft/tool_data.py), written for Causette.

Every family of requests has two lists: ``train`` phrasings and held-out ``eval`` phrasings that
no training conversation ever uses, so that the eval split measures whether the model learned the
*task* (which tool, which arguments) rather than the sentences. Slots in braces are filled by the
generator: ``{e}`` an expression, ``{v} {u1} … {u2}`` a value and two units, ``{t}`` a note, ``{q}``
a search query, ``{s}`` a sentence, ``{de_c}`` « de la France »… Registers vary on purpose:
tutoiement and vouvoiement, questions and orders, with and without « s'il vous plaît ».

The answers are written so that they suit either register (no « tu » or « vous » in an answer
that follows a templated request), and numbers are written the French way: decimal comma, no
separator for thousands (the model copies the digits of the tool's result as they are).
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- requests for a tool

PHRASES: dict[str, dict[str, list[str]]] = {
    # calculer: any arithmetic expression {e} (shown with ×, ÷, words or ASCII operators)
    "calc.expr": {
        "train": [
            "Combien font {e} ?", "Combien fait {e} ?", "Calcule {e}.", "Calcule-moi {e}, s'il te plaît.",
            "Pouvez-vous calculer {e} ?", "Pourriez-vous me dire combien font {e} ?", "{e} = ?",
            "C'est combien, {e} ?", "Ça fait combien, {e} ?", "J'ai besoin du résultat de {e}.",
            "Quel est le résultat de {e} ?", "Donne-moi le résultat de {e}.",
            "Peux-tu faire le calcul suivant : {e} ?", "Merci de calculer {e}.", "Calculez {e}, s'il vous plaît.",
            "Tu peux me calculer {e} ?", "Je voudrais savoir combien font {e}.", "Résous ce calcul : {e}",
            "Fais le calcul : {e}", "Combien ça donne, {e} ?",
        ],
        "eval": [
            "Quel résultat donne {e} ?", "Aide-moi à calculer {e}.", "Auriez-vous l'amabilité de calculer {e} ?",
            "Je n'arrive pas à calculer {e}, tu peux m'aider ?", "Que vaut {e} ?", "Sais-tu combien font {e} ?",
        ],
    },
    "calc.percent": {
        "train": ["Combien font {p} % de {x} ?", "Calcule {p} % de {x}.", "Combien représentent {p} % de {x} ?",
                  "Pouvez-vous calculer {p} pour cent de {x} ?"],
        "eval": ["À combien s'élèvent {p} % de {x} ?"],
    },
    "calc.sqrt": {
        "train": ["Quelle est la racine carrée de {x} ?", "Calcule la racine carrée de {x}.", "Racine carrée de {x} ?"],
        "eval": ["J'aimerais connaître la racine carrée de {x}."],
    },
    "calc.round": {
        "train": ["Arrondis {x} {prec}.", "Peux-tu arrondir {x} {prec} ?", "Combien fait {x} arrondi {prec} ?"],
        "eval": ["Arrondissez {x} {prec}, s'il vous plaît."],
    },
    "calc.power": {
        "train": ["Combien fait {a} {pw} ?", "Calcule {a} {pw}.", "Quelle est la valeur de {a} {pw} ?"],
        "eval": ["Que donne {a} {pw} ?"],
    },
    "calc.remainder": {
        "train": ["Quel est le reste de la division de {a} par {b} ?", "Donne le reste de {a} divisé par {b}."],
        "eval": ["Combien reste-t-il quand on divise {a} par {b} ?"],
    },
    "calc.quotient": {
        "train": ["Combien de fois {b} entre-t-il dans {a} ?", "Quel est le quotient entier de {a} par {b} ?"],
        "eval": ["Donne le quotient de la division entière de {a} par {b}."],
    },
    "calc.abs": {
        "train": ["Quelle est la valeur absolue de {x} ?", "Calcule la valeur absolue de {x}."],
        "eval": ["Donne-moi la valeur absolue de {x}."],
    },
    # date_heure: what is asked decides the answer
    "date.day": {
        "train": ["Quel jour sommes-nous ?", "On est quel jour aujourd'hui ?", "Quelle est la date d'aujourd'hui ?",
                  "Peux-tu me donner la date ?", "Pourriez-vous me rappeler la date du jour ?",
                  "C'est quoi, la date, aujourd'hui ?", "Donne-moi la date, s'il te plaît.", "Nous sommes le combien ?"],
        "eval": ["Tu sais quel jour on est ?", "Quelle date sommes-nous ?"],
    },
    "date.time": {
        "train": ["Quelle heure est-il ?", "Tu as l'heure ?", "Vous avez l'heure, s'il vous plaît ?",
                  "Il est quelle heure ?", "Donne-moi l'heure.", "Peux-tu me dire l'heure qu'il est ?"],
        "eval": ["Auriez-vous l'heure ?", "Dis-moi l'heure qu'il est."],
    },
    "date.both": {
        "train": ["Quels sont la date et l'heure ?", "Donne-moi la date et l'heure.",
                  "Quelle est la date, et quelle heure est-il ?", "J'aimerais connaître la date et l'heure."],
        "eval": ["Date et heure, s'il vous plaît."],
    },
    "date.weekday": {
        "train": ["Quel jour de la semaine sommes-nous ?", "On est quel jour de la semaine ?"],
        "eval": ["C'est quel jour de la semaine, aujourd'hui ?"],
    },
    "date.year": {
        "train": ["En quelle année sommes-nous ?", "On est en quelle année ?"],
        "eval": ["Quelle année sommes-nous ?"],
    },
    # note_ajouter: {t} is the note, an infinitive phrase, copied as is into the argument
    "note.add": {
        "train": [
            "Note : {t}.", "Ajoute une note : {t}.", "Prends note : {t}.", "Peux-tu noter qu'il faut {t} ?",
            "Mets dans mes notes : {t}.", "Note que je dois {t}.", "Ajoutez à mes notes : {t}.",
            "Pourriez-vous noter : {t} ?", "Enregistre une note : {t}.", "Note qu'il faut {t}, s'il te plaît.",
            "Ajoute « {t} » à mes notes.", "Je voudrais ajouter une note : {t}.", "Notez, s'il vous plaît : {t}.",
            "Garde en note : {t}.", "Écris dans mes notes qu'il faut {t}.", "Nouvelle note : {t}.",
        ],
        "eval": ["Tu peux ajouter une note ? {t}.", "Inscris ceci dans mes notes : {t}.",
                 "Veuillez prendre note : {t}.", "Rajoute une note pour {t}."],
    },
    "note.list": {
        "train": [
            "Quelles sont mes notes ?", "Montre-moi mes notes.", "Liste mes notes.", "Affiche mes notes, s'il te plaît.",
            "Qu'est-ce que j'ai noté ?", "Pouvez-vous me lire mes notes ?", "J'aimerais revoir mes notes.",
            "Rappelle-moi mes notes.", "Donne-moi la liste de mes notes.", "Qu'y a-t-il dans mes notes ?",
            "Pourriez-vous afficher la liste de mes notes ?", "Lis-moi mes notes.", "Quelles notes ai-je prises ?",
            "Tu peux me montrer mes notes ?", "Montrez-moi mes notes, s'il vous plaît.", "Fais-moi la liste de mes notes.",
        ],
        "eval": ["J'ai noté quoi, déjà ?", "Peux-tu me redonner mes notes ?", "Récapitule mes notes.",
                 "Voyons mes notes."],
    },
    # convertir: {u1} agrees with {v}; {u2} is a symbol or a plural name, {u2p} always a plural name
    "convert": {
        "train": [
            "Combien font {v} {u1} en {u2} ?", "Convertis {v} {u1} en {u2}.", "Peux-tu convertir {v} {u1} en {u2} ?",
            "{v} {u1}, ça fait combien en {u2} ?", "Combien de {u2p} dans {v} {u1} ?",
            "Pourriez-vous convertir {v} {u1} en {u2}, s'il vous plaît ?", "Convertissez {v} {u1} en {u2}.",
            "J'ai besoin de convertir {v} {u1} en {u2}.", "Que donnent {v} {u1} en {u2} ?",
            "Combien de {u2p} font {v} {u1} ?", "Transforme {v} {u1} en {u2}.",
            "À combien de {u2p} correspondent {v} {u1} ?", "Je voudrais convertir {v} {u1} en {u2}.",
            "{v} {u1} en {u2}, s'il te plaît.", "Donne-moi l'équivalent de {v} {u1} en {u2}.",
            "Tu peux me dire combien font {v} {u1} en {u2} ?",
        ],
        "eval": ["Combien valent {v} {u1} exprimés en {u2} ?", "Exprime {v} {u1} en {u2}.",
                 "Aidez-moi à passer {v} {u1} en {u2}.", "Ça représente combien de {u2p}, {v} {u1} ?"],
    },
    # chercher: {q} is a few words of the passage to find
    "search": {
        "train": [
            "Cherche « {q} » dans mes textes.", "Retrouve le passage où il est question de « {q} ».",
            "Cherche dans mes documents : {q}.", "Peux-tu chercher « {q} » dans mes fichiers ?",
            "Trouve-moi le passage qui parle de « {q} ».", "Fais une recherche sur « {q} » dans mes textes.",
            "Pourriez-vous chercher « {q} » dans mes textes ?", "Où est-ce que je parle de « {q} » ?",
            "Recherche « {q} », s'il te plaît.", "Qu'ai-je écrit sur « {q} » ?",
            "Cherchez « {q} » dans mes notes de lecture.", "Dans mes textes, que trouve-t-on sur « {q} » ?",
            "J'aimerais retrouver le passage avec « {q} ».", "Tu peux retrouver « {q} » dans mes textes ?",
            "Lance une recherche : {q}.", "Montre-moi ce que disent mes textes sur « {q} ».",
        ],
        "eval": ["Fouille mes textes à la recherche de « {q} ».", "Y a-t-il quelque chose sur « {q} » dans mes documents ?",
                 "Retrouvez-moi « {q} » dans mes écrits.", "Je cherche un passage contenant « {q} »."],
    },
    # no tool: capitals and rewriting (the other no-tool requests are fixed pairs, below)
    "capital": {
        "train": ["Quelle est la capitale {de_c} ?", "Quelle ville est la capitale {de_c} ?",
                  "Tu connais la capitale {de_c} ?", "Pouvez-vous me dire quelle est la capitale {de_c} ?"],
        "eval": ["Comment s'appelle la capitale {de_c} ?", "La capitale {de_c}, c'est laquelle ?"],
    },
    "rewrite.upper": {
        "train": ["Mets cette phrase en majuscules : {s}", "Écris en majuscules : {s}"],
        "eval": ["Recopie cette phrase tout en majuscules : {s}"],
    },
    "rewrite.lower": {
        "train": ["Mets cette phrase en minuscules : {s}", "Écris ceci en minuscules : {s}"],
        "eval": ["Passe cette phrase en minuscules : {s}"],
    },
    "rewrite.quote": {
        "train": ["Mets cette phrase entre guillemets : {s}", "Encadre cette phrase de guillemets français : {s}"],
        "eval": ["Ajoute des guillemets autour de cette phrase : {s}"],
    },
    "rewrite.repeat": {
        "train": ["Répète exactement : {s}", "Recopie cette phrase : {s}"],
        "eval": ["Redis-moi cette phrase mot pour mot : {s}"],
    },
}

# Which families belong to which tool (for the counts of phrasings per tool; tests check ≥ 15).
TOOL_FAMILIES = {
    "calculer": ["calc.expr", "calc.percent", "calc.sqrt", "calc.round", "calc.power", "calc.remainder",
                 "calc.quotient", "calc.abs", "calc.story"],
    "date_heure": ["date.day", "date.time", "date.both", "date.weekday", "date.year"],
    "note_ajouter": ["note.add"],
    "notes_lister": ["note.list"],
    "convertir": ["convert"],
    "chercher": ["search"],
}

# Word problems: (request, expression over {a} and {b}, answer with {r}, how {a} and {b} are drawn).
STORIES: dict[str, list[tuple[str, str, str, str]]] = {
    "train": [
        ("J'achète {a} baguettes à {b} euros pièce. Combien dois-je payer ?", "{a}*{b}", "Cela fait {r} euros.", "price"),
        ("Il y a {a} élèves et {b} bus. Combien d'élèves par bus ?", "{a}/{b}", "Cela fait {r} élèves par bus.", "div"),
        ("J'avais {a} euros et j'en ai dépensé {b}. Combien en reste-t-il ?", "{a}-{b}", "Il reste {r} euros.", "sub"),
        ("Un carton contient {a} bouteilles. Combien de bouteilles dans {b} cartons ?", "{b}*{a}",
         "{b} cartons contiennent {r} bouteilles.", "mul"),
        ("On partage {a} euros entre {b} personnes. Combien chacun reçoit-il ?", "{a}/{b}", "Chacun reçoit {r} euros.",
         "share"),
        ("Un loyer est de {a} euros par mois. Combien cela fait-il sur {b} mois ?", "{a}*{b}",
         "Cela fait {r} euros sur {b} mois.", "mul"),
        ("Paul a {a} ans. Quel âge aura-t-il dans {b} ans ?", "{a}+{b}", "Il aura {r} ans.", "add"),
        ("Un train parcourt {a} km par heure. Quelle distance fait-il en {b} heures ?", "{a}*{b}",
         "Il parcourt {r} km.", "mul"),
    ],
    "eval": [
        ("Un livre coûte {a} euros. Combien coûtent {b} livres ?", "{b}*{a}", "{b} livres coûtent {r} euros.", "mul"),
        ("Il faut {a} minutes par page. Combien de minutes pour {b} pages ?", "{a}*{b}", "Il faut {r} minutes.", "mul"),
    ],
}

# ----------------------------------------------------------------------------- answers (any split)

ANSWERS: dict[str, list[str]] = {
    "calc.expr": ["{f} = {r}.", "{f} font {r}.", "Le résultat est {r}.", "Cela fait {r}."],
    "calc.percent": ["{p} % de {x} font {r}.", "Cela fait {r}."],
    "calc.sqrt": ["La racine carrée de {x} est {r}.", "Cela fait {r}."],
    "calc.round": ["{x} arrondi {prec} donne {r}.", "Arrondi {prec} : {r}."],
    "calc.power": ["{a} {pw}, cela fait {r}.", "Le résultat est {r}."],
    "calc.remainder": ["Le reste de la division de {a} par {b} est {r}.", "Il reste {r}."],
    "calc.quotient": ["{b} entre {r} fois dans {a}.", "Le quotient entier est {r}."],
    "calc.abs": ["La valeur absolue de {x} est {r}.", "Cela fait {r}."],
    "date.day": ["Nous sommes le {date}.", "Aujourd'hui, nous sommes le {date}.", "On est le {date}."],
    "date.time": ["Il est {h}.", "Il est exactement {h}."],
    "date.both": ["Nous sommes le {date}, il est {h}.", "On est le {date} et il est {h}."],
    "date.weekday": ["Nous sommes {weekday}.", "Aujourd'hui, c'est {weekday}."],
    "date.year": ["Nous sommes en {year}.", "On est en {year}."],
    "note.add": ["C'est noté (note n° {k}) : {t}.", "Note n° {k} enregistrée : {t}.", "J'ai ajouté la note n° {k} : {t}."],
    "note.list": ["Voici les notes :\n{items}", "Il y a {n} notes :\n{items}"],
    "note.list.one": ["Il y a une seule note :\n{items}", "Voici la seule note :\n{items}"],
    "note.list.none": ["Aucune note n'est enregistrée pour l'instant.", "La liste des notes est vide."],
    "convert": ["{v} {s1} font {r} {s2}.", "{v} {s1} = {r} {s2}.", "Cela fait {r} {s2}."],
    "search": ["Dans {src}, on lit : « {quote} »", "J'ai trouvé ceci dans {src} : « {quote} »",
               "Voici le passage : « {quote} »"],
    "search.none": ["Je n'ai rien trouvé sur « {q} » dans les textes.", "Aucun passage ne parle de « {q} » dans les textes."],
    "capital": ["La capitale {de_c} est {cap}.", "C'est {cap}."],
    # declining a tool that does not exist: {pos} « envoyer un courriel », {neg} « envoyer de courriel »
    "unknown": [
        "Désolé, je ne peux pas {neg} : je n'ai pas d'outil pour cela.",
        ("Je n'ai pas d'outil pour {pos}. Je peux calculer, donner la date et l'heure, gérer des notes, "
         "convertir des unités ou chercher dans les textes."),
        "Ce n'est pas possible : aucun de mes outils ne permet {de_pos}.",
        ("Je ne sais pas {pos}, désolé. Mes outils servent à calculer, donner la date et l'heure, "
         "prendre des notes, convertir des unités et chercher dans les textes."),
    ],
}

ROUNDING = {0: ["à l'unité", "à l'entier près"], 1: ["au dixième", "à une décimale"],
            2: ["au centième", "à deux décimales"], 3: ["au millième", "à trois décimales"]}
POWERS = {2: ["au carré", "puissance 2"], 3: ["au cube", "puissance 3"]}  # other exponents: « puissance {b} »

SYSTEMS = [
    "Tu es Causette, une assistante qui sait utiliser des outils.",
    "Vous êtes Causette. Servez-vous des outils quand c'est utile.",
    "Assistante Causette : réponses courtes, en français.",
]

# ----------------------------------------------------------------------------- what the tools read

# Notes: infinitive phrases (they follow « qu'il faut », « je dois », « pour » in the requests).
NOTES = [
    "acheter du pain", "appeler le plombier", "rendre le livre à la bibliothèque", "réviser le chapitre 3",
    "payer la facture d'électricité", "prendre rendez-vous chez le dentiste", "arroser les plantes",
    "acheter des timbres", "répondre à la lettre de Marie", "sortir les poubelles mardi", "nourrir le chat",
    "réserver une table pour samedi", "relire Le Cid", "apprendre la tirade du nez", "laver la voiture",
    "prendre des pommes au marché", "souhaiter l'anniversaire de Paul", "ranger le grenier",
    "changer l'ampoule de la cuisine", "réparer le vélo", "envoyer le colis à Lucie", "acheter du lait",
    "préparer la réunion de jeudi", "finir le tricot", "chercher les enfants à 17 h", "passer à la banque",
    "rappeler Sophie", "commander du bois pour l'hiver", "vider le lave-vaisselle", "faire le plein d'essence",
    "acheter un cadeau pour Léa", "relire mon brouillon", "noter les dépenses du mois", "tondre la pelouse",
    "emprunter Une vie de Maupassant", "écrire à grand-mère", "porter les vêtements au pressing",
    "trier les photos de vacances", "inviter les voisins dimanche", "réviser les verbes irréguliers",
    "prendre du fromage pour ce soir", "renouveler mon passeport", "apporter le gâteau mercredi",
    "faire réviser la chaudière", "rendre la perceuse à Marc", "lire trois chapitres de Balzac",
    "planter les tomates", "acheter de la farine et des œufs", "ranger les livres du salon", "aller courir demain matin",
]

# Searches that find nothing: no word of these is in the demo corpus (tests/test_tool_data.py checks).
NOTHING_FOUND = ["ordinateur portable", "courriel", "trottinette", "internet", "télévision", "réfrigérateur",
                 "smartphone", "covoiturage", "aspirateur robot", "aéroport", "supermarché", "télétravail"]

# ----------------------------------------------------------------------------- no tool needed

SMALL_TALK: dict[str, list[tuple[str, str]]] = {
    "train": [
        ("Bonjour !", "Bonjour ! Que puis-je faire pour vous ?"),
        ("Salut, ça va ?", "Très bien, merci ! Et toi ?"),
        ("Merci beaucoup !", "Avec plaisir !"),
        ("Merci pour ton aide.", "De rien, c'était avec plaisir."),
        ("Au revoir.", "Au revoir, à bientôt !"),
        ("Bonne nuit !", "Bonne nuit, dormez bien !"),
        ("Qui es-tu ?", ("Je suis Causette, une petite assistante française. Je peux calculer, donner la date et "
                         "l'heure, prendre des notes, convertir des unités et chercher dans tes textes.")),
        ("Que sais-tu faire ?", ("Je peux calculer, donner la date et l'heure, prendre et relire des notes, "
                                 "convertir des unités et chercher dans tes textes.")),
        ("Comment t'appelles-tu ?", "Je m'appelle Causette."),
        ("Tu es un robot ?", "Je suis un petit modèle de langue : un programme qui a appris le français en lisant des livres."),
        ("Bonsoir", "Bonsoir ! En quoi puis-je vous aider ?"),
        ("Coucou", "Coucou ! Que puis-je faire pour toi ?"),
        ("Tu parles anglais ?", "Je parle surtout français : c'est la langue que j'ai apprise."),
        ("Raconte-moi une blague.", ("Pourquoi les plongeurs plongent-ils toujours en arrière ? "
                                     "Parce que sinon, ils tombent dans le bateau !")),
        ("Tu es gentille.", "Merci, c'est gentil !"),
        ("À plus tard !", "À plus tard !"),
        ("Quoi de neuf ?", "Rien de particulier de mon côté. Que puis-je faire pour vous ?"),
        ("Bonne journée !", "Merci, bonne journée à vous aussi !"),
        ("Pardon, je me suis trompé.", "Ce n'est rien. Que vouliez-vous demander ?"),
        ("Vous êtes là ?", "Oui, je suis là. Je vous écoute."),
    ],
    "eval": [
        ("Hello !", "Bonjour ! Que puis-je faire pour vous ?"),
        ("Merci, c'est parfait.", "Tant mieux ! N'hésitez pas si vous avez besoin d'autre chose."),
        ("Comment vas-tu ?", "Très bien, merci ! Que puis-je faire pour toi ?"),
        ("Qu'est-ce que tu peux faire pour moi ?", ("Je peux faire des calculs, donner la date et l'heure, gérer des "
                                                   "notes, convertir des unités et chercher dans tes textes.")),
        ("À demain !", "À demain !"),
        ("Tu t'appelles comment ?", "Je m'appelle Causette."),
    ],
}

QUESTIONS: dict[str, list[tuple[str, str]]] = {
    "train": [
        ("Combien y a-t-il de jours dans une semaine ?", "Une semaine compte sept jours."),
        ("Combien de mois compte une année ?", "Une année compte douze mois."),
        ("Quel est le plus long fleuve de France ?", "La Loire est le plus long fleuve de France."),
        ("Qu'est-ce qu'un alexandrin ?", "Un alexandrin est un vers de douze syllabes."),
        ("Qui a écrit « Le Misanthrope » ?", "« Le Misanthrope » est une pièce de théâtre de Molière."),
        ("En quelle saison tombent les feuilles ?", "Les feuilles tombent en automne."),
        ("Quel animal est surnommé le roi des animaux ?", "C'est le lion."),
        ("Combien de côtés a un triangle ?", "Un triangle a trois côtés."),
        ("Combien de pattes a une araignée ?", "Une araignée a huit pattes."),
        ("Que veut dire « bonjour » en anglais ?", "« Bonjour » se dit « hello » en anglais."),
        ("Quel est le contraire de « grand » ?", "Le contraire de « grand » est « petit »."),
        ("Donne-moi un synonyme de « content ».", "Un synonyme de « content » : « heureux »."),
        ("Quel est le pluriel de « cheval » ?", "Le pluriel de « cheval » est « chevaux »."),
        ("Quel est le féminin de « acteur » ?", "Le féminin de « acteur » est « actrice »."),
        ("Conjugue « être » au présent.", "Je suis, tu es, il est, nous sommes, vous êtes, ils sont."),
        ("Comment s'appelle le satellite naturel de la Terre ?", "C'est la Lune."),
        ("Quelle planète est la plus proche du Soleil ?", "Mercure est la planète la plus proche du Soleil."),
        ("De quelle couleur est une émeraude ?", "Une émeraude est verte."),
        ("Qui a peint « La Joconde » ?", "« La Joconde » a été peinte par Léonard de Vinci."),
        ("Qu'est-ce qu'un verbe ?", "Un verbe est un mot qui exprime une action ou un état, comme « courir » ou « être »."),
        ("Comment dit-on « merci » en espagnol ?", "« Merci » se dit « gracias » en espagnol."),
        ("Dans quel pays se trouve la tour Eiffel ?", "La tour Eiffel se trouve en France, à Paris."),
        ("Qu'est-ce qu'une rime ?", "Une rime est le retour d'un même son à la fin de deux vers ou plus."),
        ("Quel est le contraire de « jour » ?", "Le contraire de « jour » est « nuit »."),
        ("Qu'est-ce qu'une fable ?", "Une fable est un court récit, souvent en vers, qui se termine par une morale."),
        ("Qui a écrit « Le Corbeau et le Renard » ?", "C'est une fable de Jean de La Fontaine."),
        ("Quel est l'opposé de « chaud » ?", "L'opposé de « chaud » est « froid »."),
        ("Combien de joueurs une équipe de football aligne-t-elle sur le terrain ?", "Onze joueurs."),
        ("De quelle couleur sont les feuilles en été ?", "En été, les feuilles sont vertes."),
        ("Quel est le pluriel de « œil » ?", "Le pluriel de « œil » est « yeux »."),
    ],
    "eval": [
        ("Combien de saisons y a-t-il dans une année ?", "Il y a quatre saisons : le printemps, l'été, l'automne et l'hiver."),
        ("Quel est le pluriel de « journal » ?", "Le pluriel de « journal » est « journaux »."),
        ("Qui a écrit « Le Cid » ?", "« Le Cid » est une pièce de théâtre de Pierre Corneille."),
        ("Comment dit-on « chat » en anglais ?", "« Chat » se dit « cat » en anglais."),
        ("Quel est le contraire de « rapide » ?", "Le contraire de « rapide » est « lent »."),
        ("Quelle est la plus grande planète du système solaire ?", "Jupiter est la plus grande planète du système solaire."),
        ("Combien de pattes a un insecte ?", "Un insecte a six pattes."),
        ("Qu'est-ce qu'un sonnet ?", "Un sonnet est un poème de quatorze vers : deux quatrains puis deux tercets."),
    ],
}

# (the country with its article, its capital): « la capitale de la France », « du Japon », « des Pays-Bas »
CAPITALS = [
    ("la France", "Paris"), ("l'Italie", "Rome"), ("l'Espagne", "Madrid"), ("l'Allemagne", "Berlin"),
    ("le Portugal", "Lisbonne"), ("la Belgique", "Bruxelles"), ("la Suisse", "Berne"), ("l'Autriche", "Vienne"),
    ("la Grèce", "Athènes"), ("les Pays-Bas", "Amsterdam"), ("l'Irlande", "Dublin"), ("la Pologne", "Varsovie"),
    ("la Suède", "Stockholm"), ("la Norvège", "Oslo"), ("le Danemark", "Copenhague"), ("la Finlande", "Helsinki"),
    ("le Japon", "Tokyo"), ("la Chine", "Pékin"), ("le Canada", "Ottawa"), ("le Maroc", "Rabat"),
    ("le Sénégal", "Dakar"), ("l'Égypte", "Le Caire"), ("la Russie", "Moscou"), ("la Hongrie", "Budapest"),
    ("l'Argentine", "Buenos Aires"), ("le Pérou", "Lima"), ("le Mexique", "Mexico"), ("la Tunisie", "Tunis"),
    ("l'Algérie", "Alger"), ("le Royaume-Uni", "Londres"), ("le Mali", "Bamako"), ("Cuba", "La Havane"),
    ("le Chili", "Santiago"), ("le Kenya", "Nairobi"), ("la Turquie", "Ankara"), ("le Viêt Nam", "Hanoï"),
]

# ----------------------------------------------------------------------------- tools that do not exist

# (what it would take, affirmative « envoyer un courriel », negative « envoyer de courriel », requests)
UNKNOWN: dict[str, list[tuple[str, str, str]]] = {
    "train": [
        ("envoyer un courriel", "envoyer de courriel", "Envoie un mail à Julie pour lui dire que j'arrive."),
        ("envoyer un courriel", "envoyer de courriel", "Pouvez-vous envoyer un e-mail à mon patron ?"),
        ("jouer de la musique", "jouer de musique", "Mets de la musique."),
        ("jouer de la musique", "jouer de musique", "Joue une chanson de Brassens, s'il te plaît."),
        ("réserver un billet de train", "réserver de billet de train", "Réserve-moi un train pour Lyon demain matin."),
        ("réserver un billet de train", "réserver de billet de train", "Pourriez-vous me réserver un Paris-Marseille ?"),
        ("passer un appel", "passer d'appel", "Appelle ma mère."),
        ("passer un appel", "passer d'appel", "Téléphonez au médecin, s'il vous plaît."),
        ("consulter la météo", "consulter la météo", "Quel temps fera-t-il demain à Lille ?"),
        ("consulter la météo", "consulter la météo", "Donne-moi la météo du week-end."),
        ("commander les appareils de la maison", "commander les appareils de la maison", "Allume la lumière du salon."),
        ("commander les appareils de la maison", "commander les appareils de la maison", "Baisse le chauffage."),
        ("passer une commande en ligne", "passer de commande en ligne", "Commande-moi une pizza."),
        ("passer une commande en ligne", "passer de commande en ligne", "Achète du dentifrice sur Internet."),
        ("aller sur Internet", "aller sur Internet", "Cherche sur Internet les horaires du musée."),
        ("aller sur Internet", "aller sur Internet", "Ouvre le site du journal Le Monde."),
        ("envoyer un SMS", "envoyer de SMS", "Envoie un texto à Léa."),
        ("envoyer un SMS", "envoyer de SMS", "Écris un SMS à mon frère pour lui dire que je suis en retard."),
        ("régler un réveil", "régler de réveil", "Mets un réveil à 7 heures."),
        ("régler un réveil", "régler de réveil", "Réveille-moi demain à 6 h 30."),
        ("prendre une photo", "prendre de photo", "Prends une photo."),
        ("effectuer un paiement", "effectuer de paiement", "Paie ma facture d'électricité."),
        ("effectuer un paiement", "effectuer de paiement", "Fais un virement de 50 euros à Paul."),
        ("lire une vidéo", "lire de vidéo", "Lance un film, s'il te plaît."),
        ("publier sur les réseaux sociaux", "publier sur les réseaux sociaux", "Publie cette photo sur Instagram."),
        ("traduire une page web", "traduire de page web", "Traduis-moi cette page web en allemand."),
    ],
    "eval": [
        ("envoyer un courriel", "envoyer de courriel", "Expédie un courriel à ma sœur, s'il vous plaît."),
        ("jouer de la musique", "jouer de musique", "Passe-moi un morceau de jazz."),
        ("réserver un billet de train", "réserver de billet de train", "Achète-moi un aller simple pour Bordeaux en TGV."),
        ("passer un appel", "passer d'appel", "Compose le numéro de Marc."),
        ("consulter la météo", "consulter la météo", "Va-t-il pleuvoir cet après-midi ?"),
        ("commander les appareils de la maison", "commander les appareils de la maison", "Ferme les volets de la chambre."),
        ("envoyer un SMS", "envoyer de SMS", "Préviens Thomas par message que j'arrive."),
        ("régler un réveil", "régler de réveil", "Programme une alarme pour midi."),
        ("prendre une photo", "prendre de photo", "Photographie ce paysage."),
        ("effectuer un paiement", "effectuer de paiement", "Règle mes impôts en ligne."),
    ],
}
